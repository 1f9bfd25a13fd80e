"""The controllers together, on real stores, MLflow, git and processes.

Manual approval waits; SIGKILLed controllers (mid-training, mid-promotion) converge on restart
with no duplicate or half-made version, traffic only on complete versions, git agreeing with
what serves, and the audit chain intact.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.training.conftest import shrink

from tradeloop.clock import SimulatedClock
from tradeloop.control.deployer import DeployerController
from tradeloop.control.manager import Manager
from tradeloop.control.trainer import TrainerController
from tradeloop.control.world import World
from tradeloop.project import Project
from tradeloop.registry.decisions import decide
from tradeloop.registry.mlflow_registry import CHAMPION
from tradeloop.security.tokens import create_token
from tradeloop.store import deployments as dep
from tradeloop.store.tables import training_triggers
from tradeloop.templates import git as _git
from tradeloop.templates import init_project

TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))


def _project(tmp_path: Path, **subs: str) -> Path:
    spec = init_project(tmp_path / "repo", "loop")
    shrink(spec, **subs)
    _git(spec.parent, "add", "tradeloop.yaml")
    _git(spec.parent, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "spec")
    return spec.parent


def _cli(root: Path, *args: str, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))}
    if crash:
        env["TRADELOOP_CRASH_AT"] = crash
    return subprocess.run(
        [TRADELOOP, *args], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def _pin(root: Path) -> str:
    return subprocess.run(
        ["git", "show", "main:production.yaml"], cwd=root, capture_output=True, text=True
    ).stdout


def test_manual_approval_waits_until_approved(tmp_path: Path) -> None:
    root = _project(tmp_path, **{"  approval: auto ": "  approval: manual "})
    clock = SimulatedClock(datetime(2030, 1, 1, tzinfo=UTC))
    project = Project(Project.load(root).spec, root / "tradeloop.yaml", clock)
    world = World.open(project)
    manager = Manager(
        project.store, clock, [TrainerController(), DeployerController()], extras={"world": world}
    )
    manager.run_once()  # trains v1 (no model), then the deployer waits for approval
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        manager.run_once()
    assert [v.version for v in world.registry.versions("loop")] == ["1"]
    assert dep.current(project.store, "loop") == []  # no live traffic before approval
    assert world.registry.by_alias("loop", CHAMPION) is None
    assert "version: '1'" not in _pin(root)

    _, token = create_token(project.store, "reviewer", "approver", user="rev@example.com")
    decide(project.store, world.registry, "loop", "1", "approved", token, "reviewed")
    clock.advance(timedelta(hours=1))
    manager.run_once()
    assert world.registry.by_alias("loop", CHAMPION).version == "1"  # type: ignore[union-attr]
    assert dep.current(project.store, "loop") == [
        dep.Deployed("loop", "champion", "1", "live", 100)
    ]
    assert "version: '1'" in _pin(root) or 'version: "1"' in _pin(root)
    actions = [e.action for e in project.store.audit.list()]
    assert actions.index("model.approve") < actions.index("model.promote")
    assert project.store.audit.verify().ok
    # the pin commit names the people behind it, not only the deployer that made it
    msg = subprocess.run(
        ["git", "log", "-1", "--format=%B", "main", "--", "production.yaml"],
        cwd=root,
        capture_output=True,
        text=True,
    ).stdout
    assert "approved by: rev@example.com" in msg and "registered by: trainer" in msg, msg


# Every crash point from "run started" to "trigger done", in the order training reaches them.
TRAINING_POINTS = [
    "run_started",
    "model_logged",
    "artifacts_logged",
    "before_register",
    "version_created",
    "alias_set",
    "version_complete",
    "outcome_recorded",
    "run_finished",
]


def _runs(root: Path) -> list[tuple[str, str]]:
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / '.tradeloop' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("tradeloop/loop")
    assert exp is not None
    return [(r.info.run_id, r.info.status) for r in client.search_runs([exp.experiment_id])]


@pytest.mark.slow
@pytest.mark.parametrize("point", TRAINING_POINTS)
def test_killed_trainer_resumes_its_trigger_once(tmp_path: Path, point: str) -> None:
    root = _project(tmp_path)
    r = _cli(root, "controller", "run", "trainer", "--once", "--in-process", crash=point)
    assert r.returncode == -9, r.stderr
    r = _cli(root, "controller", "run", "trainer", "--once", "--in-process")
    assert r.returncode == 0, r.stderr
    p = Project.load(root)
    world = World.open(p)
    # exactly one version (numbered 2 when a half-made v1 was deleted first)
    (v,) = world.registry.versions("loop", include_incomplete=True)
    assert v.complete
    with p.store.engine.connect() as c:
        rows = c.execute(select(training_triggers)).all()
    assert [(t.trigger_key, t.status, t.version) for t in rows] == [
        ("initial", "registered", v.version)
    ]
    audit = p.store.audit.list()
    assert [e.subject for e in audit if e.action == "model.register"] == [f"model:loop/{v.version}"]
    assert sum(e.action == "training.run" for e in audit) == 1
    runs = _runs(root)
    assert "RUNNING" not in [s for _, s in runs]  # the killed run was marked FAILED
    trained_twice = point in TRAINING_POINTS[: TRAINING_POINTS.index("version_complete")]
    assert len(runs) == (2 if trained_twice else 1)
    recovered = [e for e in audit if e.action == "training.recover"]
    if point == "run_finished":  # killed after MLflow recorded the run FINISHED: nothing left
        assert recovered == []
        return
    (rec,) = recovered
    assert len(rec.payload["failed_runs"]) == 1
    models = list((root / ".tradeloop" / "mlartifacts" / "models").iterdir())
    assert len(models) == 1  # only the registered version's model is left
    if trained_twice and point != "run_started":  # a model was logged, then orphaned
        assert len(rec.payload["removed_models"]) == 1
    if not trained_twice:  # the version was complete: bookkeeping finished, no retraining
        assert "registered" not in r.stdout
        assert rec.payload["finished_versions"] == (["1"] if point == "version_complete" else [])
    r = _cli(root, "controller", "run", "trainer", "--once")  # nothing more to do
    assert "registered" not in r.stdout
    assert len(world.registry.versions("loop")) == 1
    assert p.store.audit.verify().ok


@pytest.mark.slow
@pytest.mark.parametrize(
    "point", ["deployer_before_git", "deployer_after_git", "deployer_after_alias"]
)
def test_killed_deployer_converges_on_restart(tmp_path: Path, point: str) -> None:
    root = _project(tmp_path)
    assert _cli(root, "controller", "run", "trainer", "--once").returncode == 0
    r = _cli(root, "controller", "run", "deployer", "--once", crash=point)
    assert r.returncode == -9, r.stderr
    p = Project.load(root)
    serving = dep.current(p.store, "loop")
    assert all(d.version == "1" for d in serving)  # never an unregistered version
    r = _cli(root, "controller", "run", "deployer", "--once")
    assert r.returncode == 0, r.stderr
    _cli(root, "controller", "run", "deployer", "--once")  # a second pass changes nothing
    world = World.open(Project.load(root))
    assert world.registry.by_alias("loop", CHAMPION).version == "1"  # type: ignore[union-attr]
    assert dep.current(p.store, "loop") == [dep.Deployed("loop", "champion", "1", "live", 100)]
    assert world.desired().pin.version == "1"  # type: ignore[union-attr]
    status = _cli(root, "status", "--json")
    assert '"in_sync": true' in status.stdout
    assert p.store.audit.verify().ok
    log = subprocess.run(
        ["git", "log", "--format=%s", "main"], cwd=root, capture_output=True, text=True
    ).stdout
    assert log.count("promote loop v1") == 1  # one commit, however often it ran
