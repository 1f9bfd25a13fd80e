"""Attributions sum to the raw score, and the link of the raw score is the model's output."""

from __future__ import annotations

import numpy as np
import pytest

from tradeloop.errors import BadInput
from tradeloop.evaluation.explain import Explainer, encode, global_importance
from tradeloop.training.adapters import LightGBMAdapter, LinearAdapter, ModelAdapter, onnx_predict

NAMES = ["a", "b", "c"]


def _data(task: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(600, 3)).astype(np.float32) * np.array([0.01, 1.0, 50.0], np.float32)
    signal = 300 * X[:, 0] + 0.5 * X[:, 1] + rng.normal(0, 0.5, 600)
    return X, ((signal > 0).astype(float) if task == "classification" else signal)


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("cls", [LightGBMAdapter, LinearAdapter])
def test_attributions_sum_to_the_raw_score(cls: type[ModelAdapter], task: str) -> None:
    X, y = _data(task)
    params = {"n_estimators": 30} if cls is LightGBMAdapter else {}
    model = cls(task=task, **params).fit(X, y)  # type: ignore[arg-type]
    doc = model.explainer_doc(NAMES)
    assert doc is not None
    exp = Explainer.from_bytes(encode(doc))  # through its stored form
    att = exp.explain(X[:50])
    assert att.values.shape == (50, 3)
    np.testing.assert_allclose(att.base + att.values.sum(axis=1), att.raw, rtol=0, atol=1e-12)
    # link(raw) is what the model predicts, natively and through its ONNX export
    np.testing.assert_allclose(att.score(), model.predict(X[:50]), atol=1e-6)
    onnx = onnx_predict(model.to_onnx(NAMES), X[:50])
    np.testing.assert_allclose(att.score(), onnx, atol=2e-5)
    assert att.link == ("logit" if task == "classification" else "identity")
    top = global_importance(exp.explain(X))
    assert top[0]["feature"] == "a" and sum(r["share"] for r in top) == pytest.approx(1.0)


def test_linear_attribution_is_coefficient_times_standardized_value() -> None:
    X, y = _data("regression")
    model = LinearAdapter(task="regression").fit(X, y)
    doc = model.explainer_doc(NAMES)
    assert doc is not None
    x = X[:1].astype(np.float64)
    z = (x[0] - np.array(doc["mean"])) / np.array(doc["scale"])
    att = Explainer(doc).explain(x)
    np.testing.assert_allclose(att.values[0], np.array(doc["coef"]) * z)
    assert att.base[0] == doc["intercept"]


def test_bad_explainers_and_inputs_are_refused() -> None:
    with pytest.raises(BadInput, match="kind"):
        Explainer({"kind": "xgboost"})
    with pytest.raises(BadInput, match="not JSON"):
        Explainer.from_bytes(b"{")
    doc = {
        "kind": "linear",
        "feature_names": ["a"],
        "link": "identity",
        "mean": [0.0],
        "scale": [1.0],
        "coef": [2.0],
        "intercept": 0.5,
    }
    with pytest.raises(BadInput, match=r"\[N, 1\]"):
        Explainer(doc).explain(np.zeros((2, 3)))
    with pytest.raises(BadInput, match="one value per feature"):
        Explainer({**doc, "coef": [1.0, 2.0]})
