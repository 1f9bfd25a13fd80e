"""One small contract for every model type, so training, tuning and serving never branch on it.

A `ModelAdapter` fits on float32 features, predicts one number per row (P(class 1) for
classification, the value for regression), and exports ONNX with one fixed interface: input
`input` float32 [N, n_features], output `prediction` float32 [N], the same numbers `predict`
returns. Serving loads ONNX only, so that interface is what lets it run any model unchanged.
The `InputSchema` (feature names in order, dtype) travels with the model so a consumer builds
the matrix the same way training did.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tradeloop.errors import BadInput, RuntimeFailure

if TYPE_CHECKING:
    import polars as pl

    from tradeloop.spec import ModelSpec

Task = Literal["classification", "regression"]
INPUT_NAME = "input"
OUTPUT_NAME = "prediction"
SCHEMA_METADATA_KEY = "tradeloop.input_schema"


class NotFittedError(RuntimeFailure):
    """predict/to_onnx on an adapter that has not been fitted: a bug in the caller."""


# ----------------------------------------------------------------------------- input schema


@dataclass(frozen=True)
class InputSchema:
    """What a model expects: these features, in this order, as one float32 matrix."""

    feature_names: tuple[str, ...]
    task: Task = "classification"
    dtype: str = "float32"
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME

    def __post_init__(self) -> None:
        if isinstance(self.feature_names, str):
            raise BadInput("feature_names must be a list of names, not one string")
        names = tuple(self.feature_names)
        object.__setattr__(self, "feature_names", names)
        if not names:
            raise BadInput("an input schema needs at least one feature")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise BadInput(f"duplicate feature names in input schema: {dupes}")
        if self.dtype != "float32":
            raise BadInput(f"input schema dtype must be float32, got {self.dtype!r}")
        if self.task not in ("classification", "regression"):
            raise BadInput(f"input schema task must be classification or regression: {self.task!r}")

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def output(self) -> str:
        """What `prediction` means: a probability of class 1, or a predicted value."""
        return "probability" if self.task == "classification" else "value"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["feature_names"] = list(self.feature_names)
        d["output"] = self.output
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSchema:
        d = {k: v for k, v in data.items() if k != "output"}
        try:
            return cls(**d)
        except TypeError as exc:
            raise BadInput(f"not an input schema: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> InputSchema:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"input schema is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise BadInput("input schema JSON must be an object")
        return cls.from_dict(data)

    def to_matrix(self, frame: pl.DataFrame) -> np.ndarray:
        """The model's input from a features frame: schema columns, in order, as float32."""
        missing = [n for n in self.feature_names if n not in frame.columns]
        if missing:
            raise BadInput(f"features frame lacks columns the model needs: {missing}")
        return np.ascontiguousarray(frame.select(self.feature_names).to_numpy(), dtype=np.float32)


# ---------------------------------------------------------------------------------- adapters


class ModelAdapter(ABC):
    """Fit / predict / export for one model type and task; subclasses fill in the model."""

    model_type: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]
    allows_nan: ClassVar[bool] = False

    def __init__(self, task: Task = "classification", seed: int = 42, **params: Any) -> None:
        if task not in ("classification", "regression"):
            raise BadInput(f"task must be 'classification' or 'regression', got {task!r}")
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise BadInput(
                f"unknown {self.model_type} parameters {unknown}; allowed: {sorted(self.defaults)}"
            )
        self.task: Task = task
        self.seed = seed
        self.params: dict[str, Any] = {**self.defaults, **params}
        self._model: Any = None
        self.n_features: int | None = None

    # the contract ---------------------------------------------------------------------------

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Fit on float32 features (thresholds stay float32-representable: ONNX parity)."""
        Xf = self._matrix(X)
        yv = self._target(y, Xf.shape[0])
        self._model = self._fit(Xf, yv)
        self.n_features = Xf.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """One float per row: P(class 1) for classification, the predicted value otherwise."""
        self._require_fitted("predict")
        Xf = self._matrix(X, self.n_features)
        return np.asarray(self._predict(Xf), dtype=np.float64).reshape(-1)

    def to_onnx(self, feature_names: list[str]) -> bytes:
        """ONNX bytes: input `input` float32 [N, F], output `prediction` float32 [N]."""
        self._require_fitted("to_onnx")
        schema = self.input_schema(feature_names)
        model, source = self._to_onnx(schema.n_features)
        return _finalize_onnx(model, source, self.task, schema, self.describe())

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable identity of the model: type, task, seed and parameters."""
        return {
            "type": self.model_type,
            "task": self.task,
            "seed": self.seed,
            "params": {k: _jsonable(v) for k, v in sorted(self.params.items())},
            "n_features": self.n_features,
            "fitted": self._model is not None,
        }

    def with_params(self, **params: Any) -> Self:
        """A new, unfitted adapter of the same type, task and seed with these parameters changed."""
        return type(self)(task=self.task, seed=self.seed, **{**self.params, **params})

    def input_schema(self, feature_names: list[str]) -> InputSchema:
        schema = InputSchema(tuple(feature_names), task=self.task)
        if self.n_features is not None and schema.n_features != self.n_features:
            raise BadInput(
                f"{schema.n_features} feature names given but the model was fitted on "
                f"{self.n_features} features"
            )
        return schema

    # for subclasses ---------------------------------------------------------------------------

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray) -> Any: ...

    @abstractmethod
    def _predict(self, X: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _to_onnx(self, n_features: int) -> tuple[onnx.ModelProto, str]:
        """The converted model and the name of its output to post-process."""

    # checks -----------------------------------------------------------------------------------

    def _require_fitted(self, what: str) -> None:
        if self._model is None:
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


def make_adapter(model_spec: ModelSpec, seed: int, n_jobs: int = 1) -> ModelAdapter:
    """The adapter for a spec's `model` section."""
    params = model_spec.model_dump(exclude={"type", "task"})
    if model_spec.type == "lightgbm":
        from tradeloop.training.adapter_lightgbm import LightGBMAdapter

        return LightGBMAdapter(task=model_spec.task, seed=seed, n_jobs=n_jobs, **params)
    if model_spec.type == "linear":
        from tradeloop.training.adapter_linear import LinearAdapter

        return LinearAdapter(task=model_spec.task, seed=seed, **params)
    raise BadInput(f"unknown model type {model_spec.type!r}")


# ------------------------------------------------------------------------------------- ONNX


def _finalize_onnx(
    model: onnx.ModelProto,
    source: str,
    task: Task,
    schema: InputSchema,
    description: dict[str, Any],
) -> bytes:
    """Give every converted model the same output: `prediction`, float32, shape [N].

    Classifiers: column 1 of the probabilities (Gather on axis 1); regressors: the [N, 1]
    values reshaped to [N]. The other converter outputs (labels) stop being graph outputs.
    """
    graph = model.graph
    if [i.name for i in graph.input] != [INPUT_NAME]:
        raise RuntimeFailure(f"converted model has inputs {[i.name for i in graph.input]}")
    if source not in {o.name for o in graph.output}:
        raise RuntimeFailure(f"converted model has no output {source!r}")
    if task == "classification":
        graph.initializer.append(
            numpy_helper.from_array(np.array(1, dtype=np.int64), "tradeloop_class1")
        )
        graph.node.append(
            helper.make_node(
                "Gather", [source, "tradeloop_class1"], [OUTPUT_NAME], axis=1, name="tradeloop_p1"
            )
        )
    else:
        graph.initializer.append(
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "tradeloop_flat")
        )
        graph.node.append(
            helper.make_node(
                "Reshape", [source, "tradeloop_flat"], [OUTPUT_NAME], name="tradeloop_flatten"
            )
        )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [None]))
    model.producer_name = "tradeloop"
    graph.name = f"tradeloop_{description['type']}_{task}"  # converters use a random uuid
    del model.metadata_props[:]
    onnx.helper.set_model_props(
        model,
        {
            SCHEMA_METADATA_KEY: schema.to_json(),
            "tradeloop.model": json.dumps(description, sort_keys=True),
        },
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_input_schema(onnx_bytes: bytes) -> InputSchema:
    """The InputSchema embedded in a model exported by `ModelAdapter.to_onnx`."""
    model = onnx.load_from_string(onnx_bytes)
    for prop in model.metadata_props:
        if prop.key == SCHEMA_METADATA_KEY:
            return InputSchema.from_json(prop.value)
    raise BadInput("this ONNX model carries no tradeloop input schema")


def onnx_predict(onnx_bytes: bytes, X: np.ndarray) -> np.ndarray:
    """Run an exported model with onnxruntime: the `prediction` output, float32 [N]."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(onnx_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
    arr = np.asarray(X)
    inp = sess.get_inputs()[0]
    width = inp.shape[1] if len(inp.shape) == 2 else None
    if arr.ndim != 2 or (isinstance(width, int) and arr.shape[1] != width):
        raise BadInput(f"X must have shape [rows, {width}], got {arr.shape}")
    (out,) = sess.run([OUTPUT_NAME], {inp.name: np.ascontiguousarray(arr, dtype=np.float32)})
    return np.asarray(out).reshape(-1)


def _jsonable(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
