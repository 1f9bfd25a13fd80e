"""Train/serve parity of the exported model: serving runs the ONNX graph, never the native one,
so the graph must predict what the fitted model predicts before anything is registered."""

from __future__ import annotations

import numpy as np

from tradeloop.errors import RuntimeFailure
from tradeloop.training.adapters import ModelAdapter, onnx_predict

PARITY_ATOL = 1e-5
PARITY_ROWS = 2000  # the latest rows the final model trained on


def export_checked(model: ModelAdapter, features: list[str], X: np.ndarray) -> tuple[bytes, float]:
    """The fitted model as ONNX bytes, and the largest |onnx - native| on the latest rows of X.

    Raises RuntimeFailure when that difference exceeds PARITY_ATOL.
    """
    onnx_bytes = model.to_onnx(features)
    held = X[-min(PARITY_ROWS, len(X)) :]
    diff = float(np.max(np.abs(onnx_predict(onnx_bytes, held) - model.predict(held))))
    if diff > PARITY_ATOL:
        raise RuntimeFailure(f"ONNX parity failed: max |onnx - native| = {diff:.2e}")
    return onnx_bytes, diff
