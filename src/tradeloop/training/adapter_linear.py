"""Linear baseline: standardised features into L2 logistic (classification) or ridge regression.

Why a scaler in both pipelines: the penalty `alpha` then means the same thing whatever the
features' units (returns ~1e-2, RSI ~50), so one search range fits every feature set.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import onnx

from tradeloop.errors import BadInput
from tradeloop.training.adapters import INPUT_NAME, ModelAdapter, Task

ONNX_OPSET = {"": 15, "ai.onnx.ml": 3}


class LinearAdapter(ModelAdapter):
    model_type = "linear"
    defaults: ClassVar[dict[str, Any]] = {"alpha": 1.0}

    def __init__(self, task: Task = "classification", seed: int = 42, **params: Any) -> None:
        super().__init__(task=task, seed=seed, **params)
        if not float(self.params["alpha"]) > 0:
            raise BadInput(f"linear alpha must be > 0, got {self.params['alpha']}")

    def _estimator(self) -> Any:
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        alpha = float(self.params["alpha"])
        if self.task == "classification":
            model: Any = LogisticRegression(C=1.0 / alpha, max_iter=1000, random_state=self.seed)
        else:
            model = Ridge(alpha=alpha)
        return Pipeline([("scale", StandardScaler()), ("model", model)])

    def _fit(self, X: np.ndarray, y: np.ndarray) -> Any:
        try:
            return self._estimator().fit(X, y)
        except ValueError as exc:
            raise BadInput(f"linear model could not fit: {exc}") from exc

    def _predict(self, X: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            return self._model.predict_proba(X)[:, 1]
        return self._model.predict(X)

    def _to_onnx(self, n_features: int) -> tuple[onnx.ModelProto, str]:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType

        final = self._model.steps[-1][1]
        options = {id(final): {"zipmap": False}} if self.task == "classification" else None
        model = to_onnx(
            self._model,
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            target_opset=ONNX_OPSET,
            options=options,
        )
        return model, "probabilities" if self.task == "classification" else "variable"
