"""Every adapter x task honours the same contract, ONNX export included."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import polars as pl
import pytest

from tradeloop.errors import BadInput
from tradeloop.spec import LightGBMModel, LinearModel
from tradeloop.training.adapters import (
    InputSchema,
    ModelAdapter,
    NotFittedError,
    make_adapter,
    onnx_input_schema,
    onnx_predict,
)

N_FEATURES = 6
FEATURES = [f"f{i}" for i in range(N_FEATURES)]
SPECS = {
    ("lightgbm", "classification"): LightGBMModel(task="classification", n_estimators=80),
    ("lightgbm", "regression"): LightGBMModel(task="regression", n_estimators=80),
    ("linear", "classification"): LinearModel(type="linear", task="classification"),
    ("linear", "regression"): LinearModel(type="linear", task="regression", alpha=0.1),
}
CASES = list(SPECS)
IDS = [f"{m}-{t}" for m, t in CASES]


def dataset(task: str, n: int = 2400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A learnable signal (two features matter, with noise), on float32 features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    X[:, 5] *= 50.0  # a feature in other units, as RSI is next to returns
    signal = X[:, 0] + 0.5 * X[:, 1] + 0.8 * rng.normal(size=n)
    if task == "classification":
        return X, (signal > 0).astype(np.float64)
    return X, 0.01 * signal


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def case(request: pytest.FixtureRequest) -> tuple[ModelAdapter, np.ndarray, np.ndarray]:
    """A fitted adapter (on the first 2/3) and the held-out rows."""
    _, task = request.param
    X, y = dataset(task)
    adapter = make_adapter(SPECS[request.param], seed=7)
    assert adapter.fit(X[:1600], y[:1600]) is adapter
    return adapter, X[1600:], y[1600:]


@pytest.fixture(scope="module")
def onnx_bytes(case: tuple[ModelAdapter, np.ndarray, np.ndarray]) -> bytes:
    return case[0].to_onnx(FEATURES)


def test_predict_shape_and_range(case: tuple[ModelAdapter, np.ndarray, np.ndarray]) -> None:
    adapter, X, _ = case
    p = adapter.predict(X)
    assert p.shape == (X.shape[0],)
    assert p.dtype == np.float64
    assert np.isfinite(p).all()
    assert np.unique(p).size > 10  # not a constant model
    if adapter.task == "classification":
        assert (p >= 0).all() and (p <= 1).all()


def test_learns_a_simple_signal(case: tuple[ModelAdapter, np.ndarray, np.ndarray]) -> None:
    adapter, X, y = case
    p = adapter.predict(X)
    if adapter.task == "classification":
        assert np.mean((p > 0.5) == (y > 0.5)) > 0.7
    else:
        assert np.mean(np.sign(p) == np.sign(y)) > 0.7
        assert np.corrcoef(p, y)[0, 1] > 0.6


@pytest.mark.parametrize(("model", "task"), CASES, ids=IDS)
def test_same_seed_same_model(model: str, task: str) -> None:
    X, y = dataset(task, n=1200, seed=3)
    a = make_adapter(SPECS[(model, task)], seed=11).fit(X[:800], y[:800])
    b = make_adapter(SPECS[(model, task)], seed=11).fit(X[:800], y[:800])
    assert np.array_equal(a.predict(X[800:]), b.predict(X[800:]))
    # byte-identical exports: the registry identifies a model by its ONNX sha256
    assert a.to_onnx(FEATURES) == b.to_onnx(FEATURES)


@pytest.mark.parametrize(("model", "task"), CASES, ids=IDS)
def test_unfitted_is_a_clear_error(model: str, task: str) -> None:
    adapter = make_adapter(SPECS[(model, task)], seed=1)
    with pytest.raises(NotFittedError, match=r"not fitted: call fit\(X, y\) before predict"):
        adapter.predict(np.zeros((3, N_FEATURES), dtype=np.float32))
    with pytest.raises(NotFittedError, match="before to_onnx"):
        adapter.to_onnx(FEATURES)


def test_onnx_parity_on_held_out_rows(
    case: tuple[ModelAdapter, np.ndarray, np.ndarray], onnx_bytes: bytes
) -> None:
    adapter, X, _ = case
    native = adapter.predict(X)
    exported = onnx_predict(onnx_bytes, X)
    assert exported.dtype == np.float32
    np.testing.assert_allclose(exported, native, rtol=0, atol=1e-5)


def test_onnx_interface_is_the_same_for_every_model(
    case: tuple[ModelAdapter, np.ndarray, np.ndarray], onnx_bytes: bytes
) -> None:
    adapter, X, _ = case
    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert (inp.name, inp.type, inp.shape[1]) == ("input", "tensor(float)", N_FEATURES)
    assert not isinstance(inp.shape[0], int)  # any batch size
    (out,) = sess.get_outputs()
    assert (out.name, out.type, len(out.shape)) == ("prediction", "tensor(float)", 1)
    (pred,) = sess.run(None, {"input": X[:7]})
    assert pred.shape == (7,)
    (one,) = sess.run(None, {"input": X[:1]})
    assert one.shape == (1,)
    model = onnx.load_from_string(onnx_bytes)
    onnx.checker.check_model(model)
    schema = onnx_input_schema(onnx_bytes)
    assert schema.feature_names == tuple(FEATURES)
    assert schema.output == ("probability" if adapter.task == "classification" else "value")


def test_describe_is_json(case: tuple[ModelAdapter, np.ndarray, np.ndarray]) -> None:
    adapter, _, _ = case
    d = json.loads(json.dumps(adapter.describe()))
    assert d["type"] in ("lightgbm", "linear")
    assert d["task"] == adapter.task
    assert d["fitted"] is True and d["n_features"] == N_FEATURES
    assert d["params"] == adapter.params


@pytest.mark.parametrize(("model", "task"), CASES, ids=IDS)
def test_with_params_makes_a_new_unfitted_adapter(model: str, task: str) -> None:
    X, y = dataset(task, n=400)
    adapter = make_adapter(SPECS[(model, task)], seed=5).fit(X, y)
    key = "num_leaves" if model == "lightgbm" else "alpha"
    value = 7 if model == "lightgbm" else 3.5
    other = adapter.with_params(**{key: value})
    assert type(other) is type(adapter)
    assert other.params[key] == value and adapter.params[key] != value
    assert (other.task, other.seed) == (adapter.task, adapter.seed)
    assert other.describe()["fitted"] is False
    with pytest.raises(BadInput, match=r"unknown .* parameters \['bogus'\]"):
        adapter.with_params(bogus=1)


@pytest.mark.parametrize(("model", "task"), CASES, ids=IDS)
def test_bad_inputs_are_clear(model: str, task: str) -> None:
    X, y = dataset(task, n=300)
    adapter = make_adapter(SPECS[(model, task)], seed=5)
    with pytest.raises(BadInput, match="300 rows but y has 299"):
        adapter.fit(X, y[:-1])
    with pytest.raises(BadInput, match="2-D"):
        adapter.fit(X[:, 0], y)
    if task == "classification":
        with pytest.raises(BadInput, match="both classes"):
            adapter.fit(X, np.ones(300))
    adapter.fit(X, y)
    with pytest.raises(BadInput, match="X has 5 features, the model was fitted on 6"):
        adapter.predict(X[:, :5])
    with pytest.raises(BadInput, match="5 feature names given"):
        adapter.to_onnx(FEATURES[:5])


def test_lightgbm_handles_missing_values_in_both_runtimes() -> None:
    X, y = dataset("classification")
    X[np.random.default_rng(1).random(X.shape) < 0.1] = np.nan  # warm-up gaps
    adapter = make_adapter(SPECS[("lightgbm", "classification")], seed=2).fit(X[:1600], y[:1600])
    np.testing.assert_allclose(
        onnx_predict(adapter.to_onnx(FEATURES), X[1600:]), adapter.predict(X[1600:]), atol=1e-5
    )


def test_linear_refuses_missing_values() -> None:
    X, y = dataset("classification", n=200)
    X[3, 2] = np.nan
    with pytest.raises(BadInput, match="1 rows hold NaN"):
        make_adapter(SPECS[("linear", "classification")], seed=2).fit(X, y)


def test_make_adapter_uses_the_spec() -> None:
    a = make_adapter(LightGBMModel(num_leaves=9, learning_rate=0.2), seed=3)
    assert a.describe()["params"]["num_leaves"] == 9
    assert a.describe()["params"]["learning_rate"] == 0.2
    assert a.seed == 3
    b = make_adapter(LinearModel(type="linear", task="regression", alpha=0.5), seed=3)
    assert b.describe() == {
        "type": "linear",
        "task": "regression",
        "seed": 3,
        "params": {"alpha": 0.5},
        "n_features": None,
        "fitted": False,
    }


def test_input_schema_round_trip_and_matrix() -> None:
    schema = InputSchema(("b", "a"), task="regression")
    assert InputSchema.from_json(schema.to_json()) == schema
    assert json.loads(schema.to_json())["dtype"] == "float32"
    frame = pl.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "timestamp": [1, 2]})
    m = schema.to_matrix(frame)
    assert m.dtype == np.float32 and m.tolist() == [[3.0, 1.0], [4.0, 2.0]]
    with pytest.raises(BadInput, match=r"lacks columns the model needs: \['c'\]"):
        InputSchema(("a", "c")).to_matrix(frame)
    with pytest.raises(BadInput, match="duplicate"):
        InputSchema(("a", "a"))
    with pytest.raises(BadInput, match="float32"):
        InputSchema.from_dict({"feature_names": ["a"], "dtype": "float64"})
    with pytest.raises(BadInput, match="not an input schema"):
        InputSchema.from_dict({"names": ["a"]})
