"""LightGBM through its scikit-learn API, exported with onnxmltools.

Why these settings: `deterministic=True` with `force_row_wise=True` and a fixed seed makes a refit
reproduce the same trees (the registry records a model by content hash); training on float32
keeps split thresholds meaningful for the float32 ONNX tree ensemble.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from tradeloop.errors import BadInput
from tradeloop.training.adapters.base import ModelAdapter
from tradeloop.training.adapters.schema import INPUT_NAME

if TYPE_CHECKING:
    import onnx

ONNX_OPSET = 15  # the newest onnxmltools' LightGBM converter supports


class LightGBMAdapter(ModelAdapter):
    model_type = "lightgbm"
    defaults: ClassVar[dict[str, Any]] = {
        "n_estimators": 200,
        "learning_rate": 0.05,
        "num_leaves": 15,
        "max_depth": -1,
        "min_child_samples": 50,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
    }
    allows_nan = True  # LightGBM routes missing values itself

    def _estimator(self) -> Any:
        import lightgbm as lgb

        cls = lgb.LGBMClassifier if self.task == "classification" else lgb.LGBMRegressor
        return cls(
            **self.params,
            # LightGBM ignores subsample unless bagging runs every k iterations
            subsample_freq=1 if self.params["subsample"] < 1 else 0,
            random_state=self.seed,
            deterministic=True,
            force_row_wise=True,
            n_jobs=self.n_jobs,
            verbose=-1,
        )

    def _fit(self, X: np.ndarray, y: np.ndarray) -> Any:
        try:
            return self._estimator().fit(X, y)
        except Exception as exc:  # LightGBMError and ValueError: bad parameters or data
            raise BadInput(f"LightGBM could not fit: {exc}") from exc

    def _predict(self, X: np.ndarray) -> np.ndarray:
        if self.task == "classification":
            return np.asarray(self.model_.predict_proba(X)[:, 1])
        return np.asarray(self.model_.predict(X))

    def _explainer(self) -> dict[str, Any]:
        """The booster's model text: TreeSHAP via `pred_contrib` at serving time."""
        return {"kind": "lightgbm", "model": self.model_.booster_.model_to_string()}

    def _to_onnx(self, n_features: int) -> tuple[onnx.ModelProto, str]:
        from onnx import helper
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        model = convert_lightgbm(
            self.model_,
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            target_opset=ONNX_OPSET,
            zipmap=False,
        )
        # onnxmltools lists the opsets in an order that varies between processes (about one
        # run in four); the registry names a model by its ONNX sha256, so fix it: "" first
        opsets = sorted((o.domain, o.version) for o in model.opset_import)
        del model.opset_import[:]
        model.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets)
        return model, "probabilities" if self.task == "classification" else "variable"
