"""Linear baseline: standardised features into L2 logistic (classification) or ridge regression.

Why a scaler in both pipelines: the penalty `alpha` then means the same thing whatever the
features' units (returns ~1e-2, RSI ~50), so one search range fits every feature set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from tradeloop.errors import BadInput
from tradeloop.training.adapters.base import ModelAdapter
from tradeloop.training.adapters.schema import INPUT_NAME

if TYPE_CHECKING:
    import onnx

ONNX_OPSET = {"": 15, "ai.onnx.ml": 3}


class LinearAdapter(ModelAdapter):
    model_type = "linear"
    defaults: ClassVar[dict[str, Any]] = {"alpha": 1.0}

    def _check_params(self) -> None:
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
            return np.asarray(self.model_.predict_proba(X)[:, 1])
        return np.asarray(self.model_.predict(X))

    def _explainer(self) -> dict[str, Any]:
        """Scaler and coefficients: attribution = coefficient x standardized value."""
        scale, final = self.model_.steps[0][1], self.model_.steps[-1][1]
        coef = np.asarray(final.coef_, dtype=np.float64).reshape(-1)
        intercept = float(np.asarray(final.intercept_, dtype=np.float64).reshape(-1)[0])
        return {
            "kind": "linear",
            "mean": np.asarray(scale.mean_, dtype=np.float64).tolist(),
            "scale": np.asarray(scale.scale_, dtype=np.float64).tolist(),
            "coef": coef.tolist(),
            "intercept": intercept,
        }

    def _to_onnx(self, n_features: int) -> tuple[onnx.ModelProto, str]:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType

        final = self.model_.steps[-1][1]
        options = {id(final): {"zipmap": False}} if self.task == "classification" else None
        model = to_onnx(
            self.model_,
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            target_opset=ONNX_OPSET,
            options=options,
        )
        return model, "probabilities" if self.task == "classification" else "variable"
