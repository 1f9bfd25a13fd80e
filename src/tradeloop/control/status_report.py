"""What `tradeloop status` and `tradeloop monitor report` show: desired vs actual, in one place.

`status` is a short command (<= 0.5 s to start), so it reads only the database, git and the
registry's aliases (`registry.alias_reader`, no MLflow import); the monitor report needs the
data stack and the full `World`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tradeloop.control.status import controller_status
from tradeloop.errors import BadInput
from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import CHALLENGER, CHAMPION
from tradeloop.store import Store
from tradeloop.store import deployments as dep
from tradeloop.store.tables import rollouts, training_triggers


def _latest_rollout(store: Store, name: str) -> dict[str, Any] | None:
    with store.engine.connect() as c:
        r = c.execute(
            select(rollouts)
            .where(rollouts.c.model_name == name)
            .order_by(rollouts.c.updated_at.desc(), rollouts.c.id.desc())
        ).first()
    if r is None:
        return None
    extra = r.analysis or {}
    return {
        "version": r.version,
        "strategy": r.strategy,
        "phase": r.phase,
        "step": r.step,
        "status": r.status,
        "reason": r.reason,
        "phase_started_at": str(r.phase_started_at),
        "last_analysis": extra.get("verdict"),
        "failures": extra.get("failures", 0),
        "extensions": extra.get("extensions", 0),
    }


def _last_trigger(store: Store, name: str) -> dict[str, Any] | None:
    with store.engine.connect() as c:
        r = c.execute(
            select(training_triggers)
            .where(training_triggers.c.model_name == name)
            .order_by(training_triggers.c.id.desc())
        ).first()
    if r is None:
        return None
    return {
        "trigger": r.trigger_key,
        "reason": r.reason,
        "status": r.status,
        "version": r.version,
        "run_id": r.run_id,
    }


def status_report(project: Project) -> dict[str, Any]:
    from tradeloop.gitops.desired import read_desired
    from tradeloop.gitops.promotion import proposals
    from tradeloop.gitops.repo import GitRepo
    from tradeloop.registry.alias_reader import alias_versions
    from tradeloop.store.alerts import open_alerts

    git = project.spec.deployment.git
    try:
        desired = read_desired(project.root, git.branch, git.pin_file, repo=GitRepo(project.root))
    except BadInput as exc:  # what git holds does not validate: show it, and what still runs
        return _status_without_desired(project, str(exc))
    name = desired.spec.name
    store = project.store
    aliases = alias_versions(project.mlflow_uri, name, (CHAMPION, CHALLENGER))
    champ, chal = aliases[CHAMPION], aliases[CHALLENGER]
    serving = [d.to_dict() for d in dep.current(store, name)]
    pinned = desired.pin.version if desired.pin else None
    live_champ = next((s["version"] for s in serving if s["variant"] == "champion"), None)
    rollout = _latest_rollout(store, name)
    controllers = {c["controller"]: c for c in controller_status(store)}
    in_sync = pinned == champ and (
        pinned is None or live_champ == pinned or (rollout or {}).get("phase") == "switched"
    )
    return {
        "name": name,
        "desired": {
            "branch": desired.branch,
            "commit": desired.spec_sha,
            "pinned": pinned,
            "rejected": list(desired.pin.rejected) if desired.pin else [],
            "spec_hash": desired.spec.spec_hash(),
        },
        "actual": {
            "champion": champ,
            "challenger": chal,
            "serving": serving,
        },
        "in_sync": in_sync,
        "rollout": rollout,
        "proposals": [
            p.to_dict()
            for p in proposals(project.root, desired.spec.deployment.git, name)
            if p.state == "open"
        ],
        "controllers": [
            {
                **controllers.get("trainer", {"controller": "trainer"}),
                "desired": "a model exists, fresh and undrifted",
                "last_trigger": _last_trigger(store, name),
            },
            {
                **controllers.get("deployer", {"controller": "deployer"}),
                "desired": f"serve v{pinned}" if pinned else "serve the first passing model",
                "actual": f"serving v{live_champ}" if live_champ else "nothing serves",
            },
            {**controllers.get("monitor", {"controller": "monitor"})},
        ],
        "alerts": [a.to_dict() for a in open_alerts(store, labels={"model": name})],
    }


def _status_without_desired(project: Project, problem: str) -> dict[str, Any]:
    """Status when the tracked branch's spec or pin is invalid: the controllers are parked on
    it (their reasons are in `controllers`), the rest is read with the working tree's spec."""
    from tradeloop.registry.alias_reader import alias_versions
    from tradeloop.store.alerts import open_alerts

    name, store = project.spec.name, project.store
    aliases = alias_versions(project.mlflow_uri, name, (CHAMPION, CHALLENGER))
    return {
        "name": name,
        "desired": {"branch": project.spec.deployment.git.branch, "error": problem},
        "actual": {
            "champion": aliases[CHAMPION],
            "challenger": aliases[CHALLENGER],
            "serving": [d.to_dict() for d in dep.current(store, name)],
        },
        "in_sync": False,
        "rollout": _latest_rollout(store, name),
        "proposals": [],
        "controllers": controller_status(store),
        "alerts": [a.to_dict() for a in open_alerts(store, labels={"model": name})],
    }


def monitor_document(project: Project) -> dict[str, Any]:
    """The monitor report, from the same `observe` the monitor evaluates its alerts on."""
    from tradeloop.control.observe import observe
    from tradeloop.control.world import World
    from tradeloop.monitoring.report import monitor_report

    world = World.open(project)
    spec = world.desired().spec
    seen = observe(world, spec, project.clock.now())
    rollout = _latest_rollout(world.store, spec.name)
    champ = seen.champion
    return monitor_report(
        model=spec.name,
        as_of=seen.as_of,
        performance=seen.performance,
        drift=seen.drift,
        store=world.store,
        alert_labels={"model": spec.name},
        experiment=(rollout or {}).get("last_analysis"),
        extra={
            "champion": champ.version if champ else None,
            "rollout": rollout,
            **{k: v for k, v in seen.values.items() if k in ("latency_p99_ms", "error_rate")},
        },
    )
