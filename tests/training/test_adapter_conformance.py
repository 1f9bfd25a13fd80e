"""Every registered adapter x task passes the public conformance suite, one test per check."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import numpy as np
import polars as pl
import pytest

from tradeloop.errors import BadInput
from tradeloop.spec import LightGBMModel, LinearModel
from tradeloop.training.adapters import (
    InputSchema,
    LightGBMAdapter,
    LinearAdapter,
    ModelAdapter,
    Task,
    adapter_class,
    make_adapter,
    register_adapter,
    registered_adapters,
)
from tradeloop.training.adapters.conformance import (
    ADAPTER_CHECKS,
    AdapterConformanceError,
    check_adapter,
    dataset,
)

# smaller than the defaults where that keeps the suite fast; the checks are the same
TEST_PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("lightgbm", "classification"): {"n_estimators": 80},
    ("lightgbm", "regression"): {"n_estimators": 80},
    ("linear", "regression"): {"alpha": 0.1},
}
CASES = [
    (name, task, check)
    for name in registered_adapters()
    for task in ("classification", "regression")
    for check in ADAPTER_CHECKS
]


def factory(name: str, task: str) -> partial[ModelAdapter]:
    return partial(adapter_class(name), **TEST_PARAMS.get((name, task), {}))


@pytest.mark.parametrize(("name", "task", "check"), CASES, ids=["-".join(c) for c in CASES])
def test_conformance(name: str, task: Task, check: str) -> None:
    ADAPTER_CHECKS[check](factory(name, task), task)


def test_every_registered_adapter_is_covered() -> None:
    assert set(registered_adapters()) == {"lightgbm", "linear"}
    assert {c[0] for c in CASES} == set(registered_adapters())


class PeekingAdapter(LinearAdapter):
    """Broken on purpose: each prediction leans on the batch's mean, i.e. on later rows."""

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return super()._predict(X) + 1e-3 * float(X[:, 0].mean())


def test_the_suite_catches_a_broken_adapter() -> None:
    failures = check_adapter(PeekingAdapter, tasks=("regression",))
    # ONNX scores row by row, so the peek also shows as a parity gap; and the explainer (the
    # linear model's coefficients) no longer adds up to what predict() returns
    assert [f.split(":")[0] for f in failures] == [
        "onnx_parity[regression]",
        "no_look_ahead[regression]",
        "explainer[regression]",
    ]
    assert "changing later rows moved earlier predictions" in failures[1]
    assert "link(raw score) differs from predict()" in failures[2]
    with pytest.raises(AdapterConformanceError, match="later rows"):
        ADAPTER_CHECKS["no_look_ahead"](PeekingAdapter, "regression")


def test_registry_refuses_what_is_not_an_adapter() -> None:
    with pytest.raises(BadInput, match="must be a ModelAdapter subclass"):
        register_adapter("thing", dict)  # type: ignore[arg-type]  # the wrong type is the point
    with pytest.raises(BadInput, match="has model_type 'linear', not 'lin'"):
        register_adapter("lin", LinearAdapter)
    with pytest.raises(
        BadInput, match=r"unknown model type 'nope'; known: \['lightgbm', 'linear'\]"
    ):
        adapter_class("nope")
    assert registered_adapters() == {"lightgbm": LightGBMAdapter, "linear": LinearAdapter}


@pytest.mark.parametrize(
    ("name", "key", "value"), [("lightgbm", "num_leaves", 7), ("linear", "alpha", 3.5)]
)
def test_with_params_changes_one_parameter(name: str, key: str, value: float) -> None:
    X, y = dataset("classification", n=400)
    adapter = factory(name, "classification")(task="classification", seed=5).fit(X, y)
    other = adapter.with_params(**{key: value})
    assert type(other) is type(adapter)
    assert other.params[key] == value and adapter.params[key] != value
    assert (other.task, other.seed, other.n_jobs) == (adapter.task, adapter.seed, adapter.n_jobs)
    assert other.describe()["fitted"] is False


def test_make_adapter_uses_the_spec() -> None:
    a = make_adapter(LightGBMModel(num_leaves=9, learning_rate=0.2), seed=3, n_jobs=2)
    assert isinstance(a, LightGBMAdapter) and a.n_jobs == 2
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


def test_linear_refuses_a_nonpositive_alpha() -> None:
    with pytest.raises(BadInput, match="linear alpha must be > 0, got 0"):
        LinearAdapter(alpha=0)


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
