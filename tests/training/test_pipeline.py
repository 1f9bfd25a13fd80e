"""The training pipeline end to end, on real MLflow (SQLite, and PostgreSQL) and real files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from tests.training.conftest import shrink

from tradeloop.project import Project
from tradeloop.registry.champion import promote_version
from tradeloop.registry.mlflow_registry import (
    CHALLENGER,
    CHAMPION,
    ONNX_FILE,
    REQUIRED_TAGS,
    Registry,
)
from tradeloop.training.pipeline import train

TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))


def _registry(p: Project) -> Registry:
    return Registry.for_project(p)


def test_train_registers_a_gated_version_with_lineage(small_project: Path) -> None:
    p = Project.load(small_project)
    r = train(p)
    assert r.version == "1" and r.gates["passed"]
    checked = {g["name"] for g in r.gates["gates"]}
    skipped = r.gates["skipped"]  # each unset gate once, and never one that was checked
    assert len(skipped) == len(set(skipped)) and not checked & set(skipped)
    reg = _registry(p)
    (v,) = reg.versions("small")
    assert set(REQUIRED_TAGS) <= set(v.tags) and v.tags["gates_passed"] == "true"
    assert v.tags["dataset_hash"] == r.dataset_hash and len(v.tags["code_revision"]) >= 40
    assert v.tags["spec_hash"] == p.spec.spec_hash()
    assert json.loads(v.tags["features"]) == p.spec.feature_names
    stored = reg.model_dir(v) / ONNX_FILE
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == v.tags["onnx_sha256"]
    assert v.aliases == [CHALLENGER]  # never champion by training alone
    assert reg.by_alias("small", CHAMPION) is None
    run = reg.client.get_run(r.run_id)
    assert run.data.tags["tradeloop.reason"] == "manual"
    assert run.inputs.dataset_inputs[0].dataset.digest == r.dataset_hash[:36]
    names = {a.path for a in reg.client.list_artifacts(r.run_id)}
    assert names >= {
        "equity_curve.png",
        "model_card.md",
        "model_card.html",
        "input_schema.json",
        "validation_report.json",
        "gates.json",
        "folds.json",
    }
    assert "fold0_sharpe" in run.data.metrics and "oos_sharpe" in run.data.metrics
    actions = [e.action for e in p.store.audit.list()]
    assert actions[-2:] == ["model.register", "training.run"]
    assert p.store.audit.verify().ok


def test_impossible_gate_registers_nothing_and_names_it(tmp_path: Path) -> None:
    from tradeloop.templates import init_project

    spec = init_project(tmp_path / "g", "gated")
    shrink(spec, **{"  min_sharpe: 0.0": "  min_sharpe: 1000.0"})
    p = Project.load(spec)
    r = train(p)
    assert r.version is None and not r.gates["passed"]
    assert r.gates["failed"] == ["min_sharpe"]
    failed = next(g for g in r.gates["gates"] if g["name"] == "min_sharpe")
    assert failed["threshold"] == 1000.0 and failed["value"] < 1000.0
    assert _registry(p).versions("gated", include_incomplete=True) == []
    assert p.store.audit.list()[-1].payload["failed_gates"] == ["min_sharpe"]


def test_challenger_is_compared_with_the_champion_on_unseen_bars(small_project: Path) -> None:
    p = Project.load(small_project)
    t0 = p.spec.data.simulator.start
    first = train(p, as_of=t0 + timedelta(hours=1100))
    reg = _registry(p)
    promote_version(p.store, reg, "small", first.version or "", actor="test")
    assert reg.by_alias("small", CHAMPION).version == "1"  # type: ignore[union-attr]

    spec = small_project / "tradeloop.yaml"
    spec.write_text(spec.read_text().replace("margin: 0.0 ", "margin: 5.0 "))
    second = train(Project.load(small_project))
    gate = next(g for g in second.gates["gates"] if g["name"] == "champion_sharpe")
    assert second.champion == "1" and second.version is None and not gate["passed"]
    # the champion's Sharpe on the bars after its own data, plus the margin
    assert gate["threshold"] is not None and gate["value"] is not None
    assert "champion" in gate["reason"] and "margin 5" in gate["reason"]

    spec.write_text(spec.read_text().replace("margin: 5.0 ", "margin: -100.0 "))
    third = train(Project.load(small_project))
    gate3 = next(g for g in third.gates["gates"] if g["name"] == "champion_sharpe")
    assert gate3["passed"] and third.version == "2"
    assert gate3["threshold"] == pytest.approx(gate["threshold"] - 105.0)


def test_retraining_on_the_champions_own_data_cannot_pass_the_champion_gate(
    small_project: Path,
) -> None:
    p = Project.load(small_project)
    first = train(p)
    promote_version(p.store, _registry(p), "small", first.version or "", actor="test")
    again = train(Project.load(small_project))
    gate = next(g for g in again.gates["gates"] if g["name"] == "champion_sharpe")
    assert not gate["passed"] and "only 0 out-of-sample bars" in gate["reason"]
    assert again.version is None


@pytest.mark.slow
@pytest.mark.parametrize(
    "point", ["model_logged", "before_register", "version_created", "alias_set"]
)
def test_killed_training_leaves_no_version(small_project: Path, point: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))}
    proc = subprocess.run(
        [TRADELOOP, "train", "--json"],
        cwd=small_project,
        capture_output=True,
        text=True,
        env={**env, "TRADELOOP_CRASH_AT": point},
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr
    p = Project.load(small_project)
    reg = _registry(p)
    assert reg.versions("small") == []
    assert reg.by_alias("small", CHALLENGER) is None
    assert p.store.audit.verify().ok
    assert "model.register" not in [e.action for e in p.store.audit.list()]
    # the next run (holding the training lease) clears the remains and registers cleanly
    r = train(p)
    (v,) = reg.versions("small")
    assert v.version == r.version and v.aliases == [CHALLENGER]
    assert reg.versions("small", include_incomplete=True) == [v]


@pytest.mark.postgres
def test_mlflow_backend_on_postgresql(
    small_project: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", pg_url)
    monkeypatch.setenv("TRADELOOP_DB_URL", pg_url)
    p = Project.load(small_project)
    r = train(p)
    assert r.version == "1"
    from sqlalchemy import create_engine, text

    eng = create_engine(pg_url)
    with eng.connect() as c:
        tags = dict(c.execute(text("select key, value from model_version_tags")).all())
    eng.dispose()
    assert tags["onnx_sha256"] == _registry(p).get("small", "1").tags["onnx_sha256"]
