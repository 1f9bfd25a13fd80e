"""What `tradeloop status` and `tradeloop monitor report` show: desired vs actual, in one place.

`status` is a short command (<= 0.5 s to start), so it reads only the database, git and the
registry's aliases (`registry.alias_reader`, no MLflow import); the monitor report needs the
data stack and the full `World`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tradeloop.clock import utc
from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import CHALLENGER, CHAMPION
from tradeloop.store import reads
from tradeloop.store.dbapi import ReadOnlyDB


def _reader(project: Project) -> ReadOnlyDB:
    """The store through the DB-API; opening the `Store` (SQLAlchemy, migrations) only when the
    database is missing or behind, which is once per project and version."""
    db = reads.current_or_none(project.db_url)
    return db if db is not None else reads.of_store(project.store)


def status_report(project: Project) -> dict[str, Any]:
    from tradeloop.gitops.desired import read_desired
    from tradeloop.gitops.promotion import proposals
    from tradeloop.gitops.repo import GitRepo
    from tradeloop.registry.alias_reader import alias_versions

    git = project.spec.deployment.git
    desired = read_desired(project.root, git.branch, git.pin_file, repo=GitRepo(project.root))
    name = desired.spec.name
    aliases = alias_versions(project.mlflow_uri, name, (CHAMPION, CHALLENGER))
    champ, chal = aliases[CHAMPION], aliases[CHALLENGER]
    with _reader(project) as db:
        serving = reads.deployments(db, name)
        rollout = reads.latest_rollout(db, name)
        now = utc(project.clock.now())
        controllers = {c["controller"]: c for c in reads.controller_status(db, now)}
        gateways = reads.gateway_reports(db, name)
        trigger = reads.last_trigger(db, name)
        alerts = reads.open_alerts(db, {"model": name})
    pinned = desired.pin.version if desired.pin else None
    live_champ = next((s["version"] for s in serving if s["variant"] == "champion"), None)
    answering = all(
        v["serving_version"] == v["deployed_version"] for g in gateways for v in g["variants"]
    )
    in_sync = (
        pinned == champ
        and answering
        and (pinned is None or live_champ == pinned or (rollout or {}).get("phase") == "switched")
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
            "gateways": gateways,  # what each gateway reports actually answers
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
                "last_trigger": trigger,
            },
            {
                **controllers.get("deployer", {"controller": "deployer"}),
                "desired": f"serve v{pinned}" if pinned else "serve the first passing model",
                "actual": f"serving v{live_champ}" if live_champ else "nothing serves",
            },
            {**controllers.get("monitor", {"controller": "monitor"})},
        ],
        "alerts": alerts,
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
    with reads.of_store(world.store) as db:
        rollout = reads.latest_rollout(db, name)
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
