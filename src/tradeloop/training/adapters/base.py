"""The model-adapter contract, written once, and the registry of adapters by model type.

A `ModelAdapter` fits on float32 features, predicts one number per row (P(class 1) for
classification, the value for regression), and exports ONNX with one fixed interface (see
`schema`): the same numbers `predict` returns. Serving loads ONNX only, so that interface is
what lets it run any model unchanged.

The contract follows scikit-learn's estimators: `__init__` only checks and stores its
arguments (no model is built, no data touched); what `fit` learns lives in attributes ending
in `_` (`model_`, `n_features_`); `fit` returns `self`; `get_params()` gives back exactly the
constructor arguments, so `clone()` and `with_params()` make a fresh unfitted twin.
`tradeloop.training.adapters.conformance.check_adapter` checks all of it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from tradeloop.errors import BadInput, RuntimeFailure
from tradeloop.training.adapters.onnx_io import finalize_onnx
from tradeloop.training.adapters.schema import TASKS, InputSchema, Task

if TYPE_CHECKING:
    import onnx

    from tradeloop.spec import ModelSpec


class NotFittedError(RuntimeFailure):
    """predict/to_onnx on an adapter that has not been fitted: a bug in the caller."""


class ModelAdapter(ABC):
    """Fit / predict / export for one model type and task; subclasses fill in the model.

    Subclasses set `model_type` and `defaults` (every tunable parameter and its default) and
    implement `_fit`, `_predict` and `_to_onnx`. `allows_nan` says the model routes missing
    features itself. `n_jobs` is the threads a fit may use; single-threaded models ignore it.
    """

    model_type: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]
    allows_nan: ClassVar[bool] = False

    model_: Any  # the fitted estimator: set by fit, absent before
    n_features_: int

    def __init__(
        self, task: Task = "classification", seed: int = 42, n_jobs: int = 1, **params: Any
    ) -> None:
        if task not in TASKS:
            raise BadInput(f"task must be 'classification' or 'regression', got {task!r}")
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise BadInput(
                f"unknown {self.model_type} parameters {unknown}; allowed: {sorted(self.defaults)}"
            )
        self.task: Task = task
        self.seed = seed
        self.n_jobs = n_jobs
        self.params: dict[str, Any] = {**self.defaults, **params}
        self._check_params()

    def _check_params(self) -> None:
        """Refuse parameter values the model cannot use (BadInput); the default accepts all."""
        return None

    # the contract ---------------------------------------------------------------------------

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Fit on float32 features (thresholds stay float32-representable: ONNX parity)."""
        Xf = self._matrix(X)
        yv = self._target(y, Xf.shape[0])
        self.model_ = self._fit(Xf, yv)
        self.n_features_ = Xf.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """One float per row: P(class 1) for classification, the predicted value otherwise."""
        self._require_fitted("predict")
        Xf = self._matrix(X, self.n_features_)
        return np.asarray(self._predict(Xf), dtype=np.float64).reshape(-1)

    def to_onnx(self, feature_names: list[str]) -> bytes:
        """ONNX bytes: input `input` float32 [N, F], output `prediction` float32 [N]."""
        self._require_fitted("to_onnx")
        schema = self.input_schema(feature_names)
        model, source = self._to_onnx(schema.n_features)
        return finalize_onnx(model, source, self.task, schema, self.describe())

    def explainer_doc(self, feature_names: list[str]) -> dict[str, Any] | None:
        """The fitted model as an `evaluation.explain` document (JSON, no pickle), or None when
        this model type has no attributions."""
        self._require_fitted("explainer_doc")
        doc = self._explainer()
        if doc is None:
            return None
        link = "logit" if self.task == "classification" else "identity"
        return {**doc, "feature_names": list(feature_names), "link": link}

    def _explainer(self) -> dict[str, Any] | None:
        """What the explainer needs (`kind` and its parameters); None: no attributions."""
        return None

    @property
    def fitted(self) -> bool:
        return hasattr(self, "model_")

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable identity of the model: type, task, seed and parameters.

        It is embedded in the ONNX metadata, so it is part of the model's content hash.
        """
        return {
            "type": self.model_type,
            "task": self.task,
            "seed": self.seed,
            "params": {k: _jsonable(v) for k, v in sorted(self.params.items())},
            "n_features": getattr(self, "n_features_", None),
            "fitted": self.fitted,
        }

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments: `type(a)(**a.get_params())` is an unfitted twin of `a`."""
        return {"task": self.task, "seed": self.seed, "n_jobs": self.n_jobs, **self.params}

    def clone(self) -> Self:
        """A new, unfitted adapter with the same arguments."""
        return type(self)(**self.get_params())

    def with_params(self, **params: Any) -> Self:
        """A new, unfitted adapter of the same type, task and seed with these parameters changed."""
        return type(self)(**{**self.get_params(), **params})

    def input_schema(self, feature_names: list[str]) -> InputSchema:
        schema = InputSchema(tuple(feature_names), task=self.task)
        fitted_on = getattr(self, "n_features_", None)
        if fitted_on is not None and schema.n_features != fitted_on:
            raise BadInput(
                f"{schema.n_features} feature names given but the model was fitted on "
                f"{fitted_on} features"
            )
        return schema

    # for subclasses ---------------------------------------------------------------------------

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray) -> Any:
        """The fitted estimator, from finite-checked float32 X and a checked target y."""

    @abstractmethod
    def _predict(self, X: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _to_onnx(self, n_features: int) -> tuple[onnx.ModelProto, str]:
        """The converted model (input named `input`) and the name of its output to post-process."""

    # checks -----------------------------------------------------------------------------------

    def _require_fitted(self, what: str) -> None:
        if not self.fitted:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted: call fit(X, y) before {what}()"
            )

    def _matrix(self, X: np.ndarray, n_features: int | None = None) -> np.ndarray:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise BadInput(f"X must be a 2-D matrix (rows x features), got shape {arr.shape}")
        if n_features is not None and arr.shape[1] != n_features:
            raise BadInput(f"X has {arr.shape[1]} features, the model was fitted on {n_features}")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        if not self.allows_nan and not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).any(axis=1).sum())
            raise BadInput(
                f"{self.model_type} needs finite features: {bad} rows hold NaN or inf "
                "(drop the warm-up rows before training)"
            )
        return arr

    def _target(self, y: np.ndarray, n_rows: int) -> np.ndarray:
        yv = np.asarray(y, dtype=np.float64).reshape(-1)
        if yv.size != n_rows:
            raise BadInput(f"X has {n_rows} rows but y has {yv.size}")
        if n_rows == 0:
            raise BadInput("cannot fit on zero rows")
        if not np.isfinite(yv).all():
            raise BadInput("y holds NaN or inf (drop rows whose label is not yet known)")
        if self.task == "regression":
            return yv
        if not np.isin(yv, (0.0, 1.0)).all():
            raise BadInput("classification labels must be 0 or 1")
        if np.unique(yv).size < 2:
            raise BadInput(f"classification needs both classes in y, got only {yv[0]:g}")
        return yv.astype(np.int64)


# ---------------------------------------------------------------------------------- registry

_ADAPTERS: dict[str, type[ModelAdapter]] = {}


def register_adapter(name: str, cls: type[ModelAdapter]) -> type[ModelAdapter]:
    """Make `model: {type: name}` build `cls`. Re-registering a name replaces it."""
    if not (isinstance(cls, type) and issubclass(cls, ModelAdapter)):
        raise BadInput(f"adapter {name!r} must be a ModelAdapter subclass, got {cls!r}")
    if getattr(cls, "model_type", None) != name:
        raise BadInput(f"adapter {cls.__name__} has model_type {cls.model_type!r}, not {name!r}")
    _ADAPTERS[name] = cls
    return cls


def adapter_class(name: str) -> type[ModelAdapter]:
    try:
        return _ADAPTERS[name]
    except KeyError:
        raise BadInput(f"unknown model type {name!r}; known: {sorted(_ADAPTERS)}") from None


def registered_adapters() -> dict[str, type[ModelAdapter]]:
    """Model type -> adapter class, for every registered adapter (a copy)."""
    return dict(sorted(_ADAPTERS.items()))


def make_adapter(model_spec: ModelSpec, seed: int, n_jobs: int = 1) -> ModelAdapter:
    """The adapter for a spec's `model` section."""
    params = model_spec.model_dump(exclude={"type", "task"})
    cls = adapter_class(model_spec.type)
    return cls(task=model_spec.task, seed=seed, n_jobs=n_jobs, **params)


def _jsonable(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
