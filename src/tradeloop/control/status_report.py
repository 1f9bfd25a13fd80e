"""What `tradeloop status` and `tradeloop monitor report` show: desired vs actual, in one place.

`status` is a short command (<= 0.5 s to start), so it reads only the database, git and the
registry's aliases (`registry.alias_reader`, no MLflow import); the monitor report needs the
data stack and the full `World`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tradeloop.control.status import controller_status
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


def canary_split(serving: list[dict[str, Any]], units: list[str]) -> dict[str, Any] | None:
    """The live challenger's target weight and the share of sticky units it really gets."""
    from tradeloop.control.canary_units import challenger_units

    chal = next((s for s in serving if s["variant"] == "challenger" and s["mode"] == "live"), None)
    if chal is None:
        return None
    doc: dict[str, Any] = {"target_pct": chal["weight"], "total_units": len(set(units))}
    if units:
        k = challenger_units(units, int(chal["weight"]))
        doc.update(units=k, realized_units_pct=round(100 * k / len(set(units)), 4))
    return doc


def status_report(project: Project) -> dict[str, Any]:
    from tradeloop.gitops.desired import read_desired
    from tradeloop.gitops.promotion import proposals
    from tradeloop.gitops.repo import GitRepo
    from tradeloop.registry.alias_reader import alias_versions
    from tradeloop.store.alerts import open_alerts

    git = project.spec.deployment.git
    desired = read_desired(project.root, git.branch, git.pin_file, repo=GitRepo(project.root))
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
        "canary_split": canary_split(serving, desired.spec.sticky_units),
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


def monitor_document(project: Project) -> dict[str, Any]:
    from tradeloop.control.monitor import reference_profile
    from tradeloop.control.world import World
    from tradeloop.monitoring.outcomes import (
        predictions_from_log,
        read_prediction_log,
        read_recent_features,
    )
    from tradeloop.monitoring.performance import PerformanceConfig, live_performance
    from tradeloop.monitoring.report import monitor_report

    world = World.open(project)
    spec = world.desired().spec
    name, now = spec.name, project.clock.now()
    champ = world.registry.by_alias(name, CHAMPION)
    reference = current = None
    performance: list[Any] = []
    log = read_prediction_log(project.predictions_dir, model=name, since=now - timedelta(days=30))
    if champ is not None:
        reference = reference_profile(world, champ)
        current = read_recent_features(
            project.predictions_dir,
            spec.monitoring.drift.window,
            model=name,
            versions=[champ.version],
        )
        if current.height == 0:
            reference = current = None
    if log.height:
        bars = world.bars(now)
        performance = live_performance(
            predictions_from_log(log, bars),
            bars,
            as_of=now,
            config=PerformanceConfig.from_spec(spec),
        )
    rollout = _latest_rollout(world.store, name)
    return monitor_report(
        model=name,
        as_of=now,
        performance=performance,
        reference=reference,
        current=current,
        drift_spec=spec.monitoring.drift,
        store=world.store,
        alert_labels={"model": name},
        experiment=(rollout or {}).get("last_analysis"),
        extra={"champion": champ.version if champ else None, "rollout": rollout},
    )
