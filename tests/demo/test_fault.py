"""The demo's injected fault is exactly the champion with its signal inverted."""

from __future__ import annotations

import numpy as np

from tradeloop.demo.fault import inverted
from tradeloop.spec import LightGBMModel
from tradeloop.training.adapters import make_adapter, onnx_predict


def test_inverted_model_predicts_one_minus_p() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 3)).astype(np.float32)
    y = (X[:, 0] + rng.normal(scale=0.5, size=400) > 0).astype(np.float64)
    model = make_adapter(LightGBMModel(n_estimators=20, num_leaves=4), seed=1).fit(X, y)
    onnx_bytes = model.to_onnx(["a", "b", "c"])
    p = onnx_predict(onnx_bytes, X)
    q = onnx_predict(inverted(onnx_bytes), X)
    assert p.std() > 0  # a model that says something, so inverting it changes something
    np.testing.assert_allclose(q, 1.0 - p, atol=1e-6)
