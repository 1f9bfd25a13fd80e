"""What `tradeloop status` and `tradeloop monitor report` show: desired vs actual, in one place.

`status` is a short command (<= 0.5 s to start), so it reads only the database, git and the
registry's aliases (`registry.alias_reader`, no MLflow import); the monitor report needs the
data stack and the full `World`.
"""

from __future__ import annotations

from typing import Any

from tradeloop.clock import utc
from tradeloop.errors import BadInput
from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import CHALLENGER, CHAMPION
from tradeloop.store import reads
from tradeloop.store.dbapi import ReadOnlyDB


def _reader(project: Project) -> ReadOnlyDB:
    """The store through the DB-API; opening the `Store` (SQLAlchemy, migrations) only when the
    database is missing or behind, which is once per project and version."""
    db = reads.current_or_none(project.db_url)
    return db if db is not None else reads.of_store(project.store)


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


KINDS = ("trainer", "deployer", "monitor")


def _controller(
    controllers: dict[str, dict[str, Any]], kind: str, project: Project
) -> dict[str, Any]:
    from tradeloop.control.names import controller_name

    name = controller_name(kind, project)
    return controllers.get(name, {"controller": name})


def status_report(project: Project) -> dict[str, Any]:
    from tradeloop.gitops.desired import read_desired
    from tradeloop.gitops.promotion import proposals
    from tradeloop.gitops.repo import GitRepo
    from tradeloop.registry.alias_reader import alias_versions

    git = project.spec.deployment.git
    try:
        desired = read_desired(
            project.root,
            git.branch,
            git.pin_file,
            repo=GitRepo(project.root),
            spec_file=project.spec_relpath,
        )
    except BadInput as exc:  # what git holds does not validate: show it, and what still runs
        return _status_without_desired(project, str(exc))
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
        "canary_split": canary_split(serving, desired.spec.sticky_units),
        "proposals": [
            p.to_dict()
            for p in proposals(project.root, desired.spec.deployment.git, name)
            if p.state == "open"
        ],
        "controllers": [
            {
                **_controller(controllers, "trainer", project),
                "desired": "a model exists, fresh and undrifted",
                "last_trigger": trigger,
            },
            {
                **_controller(controllers, "deployer", project),
                "desired": f"serve v{pinned}" if pinned else "serve the first passing model",
                "actual": f"serving v{live_champ}" if live_champ else "nothing serves",
            },
            {**_controller(controllers, "monitor", project)},
        ],
        "alerts": alerts,
    }


def _status_without_desired(project: Project, problem: str) -> dict[str, Any]:
    """Status when the tracked branch's spec or pin is invalid: the controllers are parked on
    it (their reasons are in `controllers`), the rest is read with the working tree's spec."""
    from tradeloop.registry.alias_reader import alias_versions

    name = project.spec.name
    aliases = alias_versions(project.mlflow_uri, name, (CHAMPION, CHALLENGER))
    with _reader(project) as db:
        return {
            "name": name,
            "desired": {"branch": project.spec.deployment.git.branch, "error": problem},
            "actual": {
                "champion": aliases[CHAMPION],
                "challenger": aliases[CHALLENGER],
                "serving": reads.deployments(db, name),
                "gateways": reads.gateway_reports(db, name),
            },
            "in_sync": False,
            "rollout": reads.latest_rollout(db, name),
            "proposals": [],
            "controllers": pipeline_controllers(db, project, name),
            "alerts": reads.open_alerts(db, {"model": name}),
        }


def pipeline_controllers(db: Any, project: Project, name: str) -> list[dict[str, Any]]:
    """The run status of this pipeline's controllers only (a project runs many)."""
    from tradeloop.control.names import controller_name

    mine = {controller_name(k, project if project.spec.name == name else name) for k in KINDS}
    return [
        c for c in reads.controller_status(db, utc(project.clock.now())) if c["controller"] in mine
    ]


def invalid_pipeline(project: Project, name: str, relpath: str, problem: str) -> dict[str, Any]:
    """Status of a pipeline whose spec file does not validate: the file, why, and its
    (parked) controllers. `project` is any valid pipeline of the same project."""
    with _reader(project) as db:
        return {
            "name": name,
            "file": relpath,
            "error": problem,
            "controllers": pipeline_controllers(db, project, name),
        }


def monitor_document(project: Project) -> dict[str, Any]:
    """The monitor report, from the same `observe` the monitor evaluates its alerts on."""
    from tradeloop.control.observe import observe
    from tradeloop.control.world import World
    from tradeloop.monitoring.report import monitor_report

    world = World.open(project)
    spec = world.desired().spec
    seen = observe(world, spec, project.clock.now())
    with reads.of_store(world.store) as db:
        rollout = reads.latest_rollout(db, spec.name)
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
