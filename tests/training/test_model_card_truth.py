"""The model card says what was done: environment, data ranges, purge and embargo as the folds
applied them, global attributions, segments; and the explainer it names is the one stored."""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path

import pytest

from tradeloop.project import Project
from tradeloop.registry.cards import card_for
from tradeloop.registry.mlflow_registry import Registry
from tradeloop.training.pipeline import train


def test_the_card_states_what_the_run_applied(small_project: Path) -> None:
    p = Project.load(small_project)
    assert p.spec.training.split.embargo == 2  # the template asks for an embargo ...
    r = train(p)
    assert r.version is not None
    reg = Registry.for_project(p)
    v = reg.get(p.spec.name, r.version)
    md, html = card_for(reg, v)
    # ... which walk-forward folds cannot apply: the card says 0 and why, never "embargo 2"
    assert all(f["embargoed_bars"] == 0 for f in r.folds)
    assert "embargo applied: 0 bar(s) (the spec's split.embargo of 2 is not applied" in md
    assert "embargo 2 bar(s)" not in md
    assert f"purged {r.folds[0]['purged_bars']} bar(s) before each test block" in md
    # environment
    assert f"| python | {platform.python_version()} |" in md
    assert f"| lightgbm | {metadata.version('lightgbm')} |" in md
    assert f"| onnxruntime | {metadata.version('onnxruntime')} |" in md
    lock = Path(__file__).resolve().parents[2] / "uv.lock"
    assert hashlib.sha256(lock.read_bytes()).hexdigest() in md
    # data ranges per symbol
    for s in ("AAA", "BBB", "CCC"):
        assert f"| {s} | 2023-01-02T00:00:00+00:00 |" in md
    # global attributions over every feature, and the segment table
    assert "## Explanations (global importance)" in md
    for name in p.spec.feature_names:
        assert f"| {name} |" in md
    assert "## Segments (out of sample, after costs)" in md and "| symbol | AAA |" in md
    assert "| volatility | high |" in md and "| trend | down |" in md
    assert "<table>" in html and "Segments" in html
    # the explainer artifact is the one the version's tag names
    stored = reg.run_artifact(r.run_id, "explainer.json").read_bytes()
    assert hashlib.sha256(stored).hexdigest() == v.tags["explainer_sha256"]
    # train --json carries the segment report and the selection statistics
    doc = r.to_dict()
    assert doc["segments"]["segments"] and "deflated_sharpe" in doc and doc["pbo"] is None
    assert doc["selection"]["pbo_note"].startswith("not computed: no tuning ran")

    # served from the registry, a v2 request asking for explanations gets attributions that
    # sum to the raw score whose logistic is the served probability
    _explained_through_the_registry(p, reg, r.version)


def _explained_through_the_registry(p: Project, reg: Registry, version: str) -> None:
    import math
    import time

    import httpx
    from tests.serving.conftest import start_live

    from tradeloop.serving.mlflow_source import project_app
    from tradeloop.store.deployments import Deployed, apply

    apply(
        p.store,
        p.spec.name,
        [Deployed(p.spec.name, "champion", version, "live", 100)],
        actor="test",
        reason="test",
    )
    server = start_live(project_app(p, reg, poll_interval=0.05))
    try:
        n = len(p.spec.feature_names)
        tensor = {"name": "input", "shape": [2, n], "datatype": "FP32", "data": [0.01] * 2 * n}
        body = {"inputs": [tensor], "parameters": {"explain": True}}
        r = httpx.post(f"{server.url}/v2/models/{p.spec.name}/infer", json=body, timeout=30)
        assert r.status_code == 200, r.text
        doc = r.json()
        for pred, e in zip(
            doc["outputs"][0]["data"], doc["parameters"]["explanations"], strict=True
        ):
            raw = e["base_value"] + sum(e["attributions"].values())
            assert raw == pytest.approx(e["raw_score"], abs=1e-9)
            assert 1 / (1 + math.exp(-raw)) == pytest.approx(pred, abs=1e-5)
        # a variant made from it (the demo's inverted fault) has another graph: the base's
        # explainer would explain the wrong model, so it has none
        from tradeloop.demo.fault import inverted
        from tradeloop.registry.variants import register_variant

        base = reg.get(p.spec.name, version)
        onnx_bytes, _ = reg.fetch_onnx(p.spec.name, version)
        variant = register_variant(
            reg, base, inverted(onnx_bytes), run_name="variant", reason="test", trained_at="now"
        )
        assert "explainer_sha256" not in variant.tags
        apply(
            p.store,
            p.spec.name,
            [Deployed(p.spec.name, "champion", variant.version, "live", 100)],
            actor="test",
            reason="test",
        )
        meta = f"{server.url}/v2/models/{p.spec.name}"
        deadline = time.monotonic() + 30
        while httpx.get(meta).json()["parameters"]["version"] != variant.version:
            assert time.monotonic() < deadline, "the variant was never loaded"
            time.sleep(0.05)
        r = httpx.post(f"{server.url}/v2/models/{p.spec.name}/infer", json=body, timeout=30)
        assert r.status_code == 409 and "has no explainer" in r.text
    finally:
        server.stop()
