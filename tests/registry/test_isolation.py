"""Two projects in one process keep separate MLflow state: runs, versions, artifacts.

MLflow's fluent API keeps the tracking URI and the active run in process-global state; the
registry reaches MLflow through its own client only, so interleaved work on two projects must
land each in its own store.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.training.conftest import shrink

from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import ONNX_FILE, Registry, sha256_file
from tradeloop.templates import init_project
from tradeloop.training.pipeline import train


def _project(root: Path, name: str) -> Project:
    spec = init_project(root, name)
    shrink(spec)
    return Project.load(spec)


def _runs(reg: Registry) -> set[str]:
    exps = [e.experiment_id for e in reg.client.search_experiments()]
    return {r.info.run_id for r in reg.client.search_runs(exps)}


@pytest.mark.slow
def test_two_projects_in_one_process_keep_separate_tracking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # a stray default store (./mlruns, ./mlflow.db) would show here
    a = _project(tmp_path / "a", "alpha")
    b = _project(tmp_path / "b", "beta")
    assert a.mlflow_uri != b.mlflow_uri
    reg_a, reg_b = Registry.for_project(a), Registry.for_project(b)

    a1 = train(a)  # interleaved: a, b, a
    b1 = train(b, registry=reg_b)
    a2 = train(Project.load(a.spec_path), reason="again")
    assert (a1.version, b1.version, a2.version) == ("1", "1", "2")

    assert [v.version for v in reg_a.versions("alpha")] == ["1", "2"]
    assert [v.version for v in reg_b.versions("beta")] == ["1"]
    assert reg_a.versions("beta") == [] and reg_b.versions("alpha") == []
    runs_a, runs_b = _runs(reg_a), _runs(reg_b)
    assert {a1.run_id, a2.run_id} <= runs_a and b1.run_id in runs_b
    assert not runs_a & runs_b
    for reg, name in ((reg_a, "alpha"), (reg_b, "beta")):
        for v in reg.versions(name):
            path = reg.model_dir(v) / ONNX_FILE
            assert sha256_file(path) == v.tags["onnx_sha256"]
            assert str(path).startswith(str(tmp_path / ("a" if name == "alpha" else "b")))
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()
