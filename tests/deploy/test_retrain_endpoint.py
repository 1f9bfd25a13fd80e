"""The retraining trigger endpoint the cloud event paths call, end to end on loopback.

A real gateway (uvicorn on 127.0.0.1) records the request in the project's store; the real
trainer controller reconciles against the same store, MLflow and git repository, and trains
once for it. The same delivery again changes nothing; missing or weak tokens are refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

from tests.serving.conftest import start_live
from tests.training.conftest import shrink
from tradeloop.clock import SimulatedClock
from tradeloop.control.deployer import DeployerController
from tradeloop.control.manager import Manager
from tradeloop.control.trainer import TrainerController
from tradeloop.control.world import World
from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import CHAMPION
from tradeloop.security.tokens import create_token
from tradeloop.serving.server import build_app
from tradeloop.serving.source import DirectorySource
from tradeloop.store.tables import training_triggers
from tradeloop.templates import git as _git
from tradeloop.templates import init_project

BODY = {"id": "evt-0001", "reason": "nightly EventBridge rule"}


def _project(tmp_path: Path) -> Project:
    spec = init_project(tmp_path / "repo", "loop")
    shrink(spec)
    _git(spec.parent, "add", "tradeloop.yaml")
    _git(spec.parent, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "spec")
    clock = SimulatedClock(datetime(2030, 1, 1, tzinfo=UTC))
    return Project(Project.load(spec.parent).spec, spec, clock)


def _triggers(project: Project) -> list[tuple[str, str]]:
    with project.store.engine.connect() as c:
        rows = c.execute(select(training_triggers).order_by(training_triggers.c.id)).all()
    return [(r.trigger_key, r.status) for r in rows]


def _runs(world: World, trigger: str) -> int:
    """Training runs (top-level MLflow runs) started for `trigger`."""
    runs = world.registry.client.search_runs(
        [world.registry.experiment_id("loop")],
        filter_string=f"tags.`tradeloop.trigger` = '{trigger}'",
    )
    return sum(1 for r in runs if "mlflow.parentRunId" not in r.data.tags)


def test_posted_trigger_trains_exactly_once(tmp_path: Path) -> None:
    project = _project(tmp_path)
    world = World.open(project)
    loop = Manager(
        project.store,
        project.clock,
        [TrainerController(), DeployerController()],
        extras={"world": world},
    )
    loop.run_once()  # v1 (no model existed), then the deployer promotes it
    loop.run_once()
    assert world.registry.by_alias("loop", CHAMPION).version == "1"  # type: ignore[union-attr]
    assert len(world.registry.versions("loop")) == 1  # nothing due on its own

    operator, _ = create_token(project.store, "eventbridge", "operator", user="ops@example.com")
    viewer, _ = create_token(project.store, "dashboard", "viewer")
    app = build_app(
        project.store, "loop", DirectorySource(tmp_path / "models"), state_dir=tmp_path / "gw"
    )
    live = start_live(app)
    try:
        with httpx.Client(base_url=live.url, timeout=10) as http:
            r = http.post("/v1/retrain", json=BODY)
            assert r.status_code == 401, r.text
            assert r.headers["www-authenticate"].startswith("Bearer")
            r = http.post("/v1/retrain", json=BODY, headers={"Authorization": f"Bearer {viewer}"})
            assert r.status_code == 403, r.text
            assert _triggers(project) == [("initial", "registered")]  # refused: nothing recorded

            auth = {"Authorization": f"Bearer {operator}"}
            r = http.post("/v1/retrain", json=BODY, headers=auth)
            assert r.status_code == 202, r.text
            assert r.json()["status"] == "requested" and r.json()["created"] is True

            project.clock.advance(timedelta(minutes=31))  # the trainer's interval
            loop.run_once()
            assert _runs(world, "request:evt-0001") == 1  # gated or registered, it trained once

            r = http.post("/v1/retrain", json=BODY, headers=auth)  # the event bus redelivers
            assert r.status_code == 200, r.text
            assert r.json()["created"] is False and r.json()["status"] in ("registered", "gated")
            project.clock.advance(timedelta(minutes=31))  # the trainer's interval
            loop.run_once()
            assert _runs(world, "request:evt-0001") == 1
            assert _triggers(project) == [
                ("initial", "registered"),
                ("request:evt-0001", r.json()["status"]),
            ]

            clash = {**BODY, "reason": "something else"}
            r = http.post("/v1/retrain", json=clash, headers=auth)
            assert r.status_code == 409 and "evt-0001" in r.json()["message"]
            r = http.post("/v1/retrain", json={**BODY, "pipeline": "other"}, headers=auth)
            assert r.status_code == 404 and "'loop'" in r.json()["message"]
            r = http.post("/v1/retrain", json={"id": "x"}, headers=auth)
            assert r.status_code == 400 and "'reason'" in r.json()["message"]
            r = http.post("/v1/retrain", json={**BODY, "when": 1}, headers=auth)
            assert r.status_code == 400 and "when" in r.json()["message"]
    finally:
        live.stop()
    actions = [e.action for e in project.store.audit.list()]
    assert actions.count("training.request") == 1
    # the request is audited under the token's user, and the versions name their authors
    (asked,) = project.store.audit.list(action="training.request")
    assert asked.actor == "ops@example.com"
    v1 = world.registry.get("loop", "1")
    assert (v1.tags["registered_by"], v1.tags["triggered_by"]) == ("trainer", "trainer")
    if _triggers(project)[-1][1] == "registered":
        v2 = world.registry.get("loop", "2")
        assert (v2.tags["registered_by"], v2.tags["triggered_by"]) == ("trainer", "ops@example.com")
    from tradeloop.store.retrain_requests import requested_by

    assert requested_by(project.store, "loop", "request:evt-0001") == "ops@example.com"
    assert requested_by(project.store, "loop", "initial") is None
    assert project.store.audit.verify().ok
