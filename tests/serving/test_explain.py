"""Per-prediction explanations at the gateway: over HTTP, they sum to the served score."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import numpy as np
import pytest

from tradeloop.data.simulator import simulate
from tradeloop.serving.explain import DIGEST_FILE, put_explainer
from tradeloop.serving.source import DirectorySource
from tradeloop.spec import SimulatorSpec, Spec
from tradeloop.training.adapters import LightGBMAdapter, LinearAdapter, ModelAdapter

SPEC = Spec(name="t")
NAMES = SPEC.feature_names


def _fit(cls: type[ModelAdapter], task: str = "classification") -> ModelAdapter:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, len(NAMES))).astype(np.float32)
    y = (X[:, 0] - 0.5 * X[:, 3] + rng.normal(0, 1, 800) > 0).astype(float)
    if task == "regression":
        y = X[:, 0] * 0.01 + rng.normal(0, 0.01, 800)
    params = {"n_estimators": 25} if cls is LightGBMAdapter else {}
    return cls(task=task, **params).fit(X, y)  # type: ignore[arg-type]


def _publish(models: DirectorySource, version: str, model: ModelAdapter) -> None:
    models.put("demo", version, model.to_onnx(NAMES), NAMES)
    doc = model.explainer_doc(NAMES)
    assert doc is not None
    put_explainer(models, "demo", version, doc)


def _check(explanation: dict[str, Any], prediction: float, features: dict[str, float]) -> None:
    att = explanation["attributions"]
    assert list(att) == NAMES and set(features) == set(NAMES)
    raw = explanation["base_value"] + sum(att.values())
    assert raw == pytest.approx(explanation["raw_score"], abs=1e-9)  # they sum to the raw score
    link = 1 / (1 + math.exp(-raw)) if explanation["link"] == "logit" else raw
    assert link == pytest.approx(prediction, abs=2e-6)  # whose link is the served prediction


def test_trading_signal_explained_with_treeshap(
    make_app: Callable[..., Any],
    models: DirectorySource,
    deployer: Callable[..., None],
    live: Any,
) -> None:
    _publish(models, "7", _fit(LightGBMAdapter))
    deployer(("champion", "7", "live", 100))
    url = live(make_app(features=SPEC.features)).url
    bars = simulate(SimulatorSpec(symbols=["AAA", "BBB"], bars=80, seed=3), timedelta(hours=1))
    payload = [{**r, "timestamp": r["timestamp"].isoformat()} for r in bars.to_dicts()]
    assert httpx.post(url + "/v1/bars", json={"bars": payload}).status_code == 200
    plain = httpx.get(url + "/v1/signals/AAA").json()
    assert "explanation" not in plain
    sig = httpx.get(url + "/v1/signals/AAA", params={"explain": "true"}).json()
    assert sig["prediction"] == plain["prediction"]
    assert sig["explanation"]["link"] == "logit"
    _check(sig["explanation"], sig["prediction"], sig["features"])
    assert any(v != 0 for v in sig["explanation"]["attributions"].values())
    bad = httpx.get(url + "/v1/signals/AAA", params={"explain": "maybe"})
    assert bad.status_code == 400 and "explain must be true or false" in bad.text


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_v2_infer_explains_each_row(
    make_app: Callable[..., Any],
    models: DirectorySource,
    deployer: Callable[..., None],
    live: Any,
    task: str,
) -> None:
    _publish(models, "8", _fit(LinearAdapter, task))
    deployer(("champion", "8", "live", 100))
    url = live(make_app()).url
    rows = np.random.default_rng(1).normal(size=(3, len(NAMES))).round(4)
    tensor = {"name": "input", "shape": [3, len(NAMES)], "datatype": "FP32", "data": rows.tolist()}
    body = {"inputs": [tensor], "parameters": {"explain": True}}
    r = httpx.post(url + "/v2/models/demo/infer", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    preds, explained = doc["outputs"][0]["data"], doc["parameters"]["explanations"]
    assert len(explained) == 3
    for i in range(3):
        _check(explained[i], preds[i], dict(zip(NAMES, rows[i], strict=True)))
    assert explained[0]["link"] == ("logit" if task == "classification" else "identity")
    no = httpx.post(url + "/v2/models/demo/infer", json={"inputs": [tensor]}).json()
    assert "parameters" not in no and no["outputs"] == doc["outputs"]
    bad = httpx.post(url + "/v2/models/demo/infer", json={**body, "parameters": {"explain": 1}})
    assert bad.status_code == 400 and "parameters.explain must be true or false" in bad.text


def test_missing_or_tampered_explainer_is_refused(
    make_app: Callable[..., Any],
    models: DirectorySource,
    deployer: Callable[..., None],
    live: Any,
) -> None:
    model = _fit(LinearAdapter)
    models.put("demo", "9", model.to_onnx(NAMES), NAMES)  # no explainer stored
    deployer(("champion", "9", "live", 100))
    url = live(make_app()).url
    tensor = {"name": "input", "shape": [1, len(NAMES)], "datatype": "FP32", "data": [0.1] * 9}
    body = {"inputs": [tensor], "parameters": {"explain": True}}
    r = httpx.post(url + "/v2/models/demo/infer", json=body)
    assert r.status_code == 409 and "has no explainer" in r.text
    doc = model.explainer_doc(NAMES)
    assert doc is not None
    put_explainer(models, "demo", "9", doc)
    (models.root / "demo" / "9" / DIGEST_FILE).write_text("0" * 64)
    r = httpx.post(url + "/v2/models/demo/infer", json=body)
    assert r.status_code == 409 and "does not match its recorded sha256" in r.text
    # predictions without explanations are unaffected
    assert httpx.post(url + "/v2/models/demo/infer", json={"inputs": [tensor]}).status_code == 200
