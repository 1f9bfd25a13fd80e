"""Many pipelines in one project: one control plane reconciles each of them, one gateway serves
them all, and a pipeline whose spec does not validate is parked without stopping the others.

The process is assembled as `tradeloop up` assembles it, on a SimulatedClock, and the gateway
is a real uvicorn server on loopback.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.serving.conftest import start_live
from typer.testing import CliRunner

from tradeloop.cli import app as cli
from tradeloop.clock import SimulatedClock
from tradeloop.control.assembly import assemble
from tradeloop.errors import SpecError
from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import CHAMPION
from tradeloop.security.tokens import create_token
from tradeloop.spec.catalog import load_catalog, parse_pipeline
from tradeloop.store.retrain_requests import oldest_request
from tradeloop.templates import git_commit, multi_specs

HOUR = timedelta(hours=1)
TRAIN_AT = 900
BROKEN = "name: broken\ndata:\n  source: simulator\n  frequncy: 1h\n"  # a typo on line 4


def _small(text: str) -> str:
    for old, new in {
        "    bars: 3000": "    bars: 1400",
        "    folds: 3": "    folds: 2",
        "    min_train_bars: 1000": "    min_train_bars: 500",
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    return text.replace("  n_estimators: 150", "  n_estimators: 40")


def _project(root: Path, broken: bool = True) -> Path:
    specs = multi_specs()
    pdir = root / "pipelines"
    pdir.mkdir(parents=True)
    for name in ("equities-1h", "fx-15m"):
        (pdir / f"{name}.yaml").write_text(_small(specs[name]))
    if broken:
        (pdir / "broken.yaml").write_text(BROKEN)
    (root / ".gitignore").write_text(".tradeloop/\n")
    from tradeloop.templates import git

    git(root, "init", "-q", "-b", "main")
    git_commit(root, "three pipelines, one broken", "pipelines", ".gitignore")
    return root


def test_two_files_with_one_name_are_refused_naming_both(tmp_path: Path) -> None:
    root = _project(tmp_path / "repo", broken=False)
    text = (root / "pipelines" / "fx-15m.yaml").read_text()
    (root / "pipelines" / "fx-copy.yaml").write_text(text)
    with pytest.raises(SpecError) as exc:
        load_catalog(root)
    assert "pipelines/fx-copy.yaml" in str(exc.value)
    assert "pipelines/fx-15m.yaml" in str(exc.value)
    assert "'fx-15m'" in str(exc.value)


def test_each_pipeline_file_gets_its_own_pin_unless_it_names_one() -> None:
    text = multi_specs()["fx-15m"]
    assert parse_pipeline(text, "pipelines/fx-15m.yaml").deployment.git.pin_file == (
        "production/fx-15m.yaml"
    )
    assert parse_pipeline(text, "tradeloop.yaml").deployment.git.pin_file == "production.yaml"
    named = text.replace("git: {branch: main, mode: direct}", "git: {pin_file: pins/fx.yaml}")
    assert parse_pipeline(named, "pipelines/x.yaml").deployment.git.pin_file == "pins/fx.yaml"


def test_validate_reports_the_broken_file_and_line_and_checks_the_rest(tmp_path: Path) -> None:
    root = _project(tmp_path / "repo")
    r = CliRunner().invoke(cli, ["validate", "--spec", str(root), "--json"])
    assert r.exit_code == 2, r.output
    import json

    doc = json.loads(r.stdout)
    assert doc["ok"] is False
    assert sorted(p["name"] for p in doc["pipelines"]) == ["equities-1h", "fx-15m"]
    (bad,) = doc["invalid"]
    assert bad["name"] == "broken" and bad["file"] == "pipelines/broken.yaml"
    assert any(p.startswith("pipelines/broken.yaml:4: data.frequncy") for p in bad["problems"])
    one = CliRunner().invoke(cli, ["validate", "--spec", str(root), "--pipeline", "fx-15m"])
    assert one.exit_code == 0, one.output
    missing = CliRunner().invoke(cli, ["data", "check", "--spec", str(root)])
    assert missing.exit_code == 2
    assert "pass --pipeline NAME" in missing.output


def _infer(client: httpx.Client, name: str, base: str = "") -> dict[str, Any]:
    meta = client.get(f"{base}/v2/models/{name}")
    assert meta.status_code == 200, meta.text
    (inp,) = meta.json()["inputs"]
    width = inp["shape"][-1]
    body = {
        "inputs": [
            {"name": inp["name"], "shape": [1, width], "datatype": "FP32", "data": [0.1] * width}
        ]
    }
    r = client.post(f"{base}/v2/models/{name}/infer", json=body)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


@pytest.mark.slow  # trains two pipelines: ~25 s
def test_one_control_plane_and_one_gateway_for_every_pipeline(tmp_path: Path) -> None:
    root = _project(tmp_path / "repo")
    first = Project.load(root, pipeline="equities-1h")
    clock = SimulatedClock(first.spec.data.simulator.start + TRAIN_AT * HOUR)
    cat = load_catalog(root)
    eq = Project(cat.pipelines["equities-1h"].spec, cat.pipelines["equities-1h"].path, clock)
    fx = eq.sibling(*cat.pipelines["fx-15m"])
    assert eq.pipeline_dir != fx.pipeline_dir and eq.state_dir == fx.state_dir
    proc = assemble(eq, gateway=True, pipelines=[eq, fx], broken=cat.broken)
    names = sorted(c.name for c in proc.manager.controllers)
    assert names == sorted(
        f"{k}:{p}"
        for k in ("trainer", "deployer", "monitor")
        for p in ("equities-1h", "fx-15m", "broken")
    )
    live = start_live(proc.app)
    try:
        for _ in range(4):  # train, then deploy the first passing model, per pipeline
            records = proc.manager.run_once()
            clock.advance(HOUR)
        runs = {r.controller: r for r in records}
        for kind in ("trainer", "deployer", "monitor"):
            parked = runs[f"{kind}:broken"]
            assert parked.outcome == "terminal"
            assert "invalid_spec" in parked.message
            assert "pipelines/broken.yaml:4" in parked.message
        for name in ("equities-1h", "fx-15m"):
            world = proc.worlds[name]
            versions = world.registry.versions(name)
            assert [v.version for v in versions] == ["1"], name  # one model per pipeline
            assert world.registry.by_alias(name, CHAMPION) is not None
        for app in proc.app.apps.values():
            app.state.gateway.manager.refresh()
        with httpx.Client(base_url=live.url, timeout=30) as client:
            for name in ("equities-1h", "fx-15m"):
                doc = _infer(client, name)
                assert doc["model_name"] == name and doc["model_version"] == "1"
                inv = client.post(
                    f"/models/{name}/invocations",
                    json={"dataframe_records": [dict.fromkeys(_features(client, name), 0.1)]},
                )
                assert inv.status_code == 200, inv.text
                assert client.get(f"/pipelines/{name}/readyz").status_code == 200
            plain = client.post("/invocations", json={"instances": [[0.1]]})
            assert plain.status_code == 404
            assert "/models/fx-15m/invocations" in plain.json()["message"]
            unknown = client.post("/v2/models/nope/infer", json={"inputs": []})
            assert unknown.status_code == 404 and "equities-1h" in unknown.json()["error"]
            assert client.get("/v2/health/ready").json() == {"ready": True}
            operator, _ = create_token(eq.store, "events", "operator")
            ask = {"id": "evt-1", "reason": "new data", "pipeline": "fx-15m"}
            nameless = client.post("/v1/retrain", json={"id": "evt-1", "reason": "x"})
            assert nameless.status_code == 400 and "fx-15m" in nameless.json()["message"]
            auth = {"Authorization": f"Bearer {operator}"}
            r = client.post("/v1/retrain", json=ask, headers=auth)
            assert r.status_code == 202, r.text  # recorded for fx-15m, by its own endpoint
            assert oldest_request(eq.store, "fx-15m") is not None
            assert oldest_request(eq.store, "equities-1h") is None
            metrics = client.get("/metrics").text
            assert 'model="fx-15m"' in metrics and 'model="equities-1h"' in metrics
        assert eq.store.audit.verify().ok
    finally:
        live.stop()
        proc.close()


def _features(client: httpx.Client, name: str) -> list[str]:
    meta = client.get(f"/v2/models/{name}").json()
    params = meta.get("parameters") or {}
    feats = params.get("feature_names") or params.get("features")
    assert feats, meta
    return list(feats)
