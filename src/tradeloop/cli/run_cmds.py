"""Running things: `serve`, `deploy`, `up`, `controller run`, `status`, `drift`, `monitor report`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tradeloop.cli._common import (
    JsonOpt,
    SpecOpt,
    TokenOpt,
    caller,
    emit_json,
    err,
    handle_errors,
    load_project,
    out,
)
from tradeloop.errors import BadInput

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from tradeloop.control.manager import Manager
    from tradeloop.control.reconciler import Reconciler
    from tradeloop.control.world import World
    from tradeloop.project import Project

controller_app = typer.Typer(help="Run controllers as their own processes.", no_args_is_help=True)
monitor_app = typer.Typer(help="Monitoring reports.", no_args_is_help=True)

HostOpt = Annotated[str, typer.Option(help="Interface to listen on.")]
PortOpt = Annotated[int, typer.Option(help="Port to listen on.")]
CONTROLLERS = ("trainer", "deployer", "monitor")
CertOpt = Annotated[Path | None, typer.Option(help="TLS certificate (PEM); serves HTTPS.")]
KeyOpt = Annotated[Path | None, typer.Option(help="TLS private key (PEM).")]
ClientCaOpt = Annotated[
    Path | None, typer.Option(help="CA bundle: require client certificates it signed (mTLS).")
]


def _app(project: Project, world: World) -> Starlette:
    from tradeloop.serving.mlflow_source import project_app

    return project_app(project, world.registry)


def _controllers(names: list[str]) -> list[Reconciler]:
    from tradeloop.control.deployer import DeployerController
    from tradeloop.control.monitor import MonitorController
    from tradeloop.control.trainer import TrainerController

    make: dict[str, Callable[[], Reconciler]] = {
        "trainer": TrainerController,
        "deployer": DeployerController,
        "monitor": MonitorController,
    }
    unknown = [n for n in names if n not in make]
    if unknown:
        raise BadInput(f"unknown controller(s) {unknown}; choose from {', '.join(CONTROLLERS)}")
    return [make[n]() for n in names]


def _manager(project: Project, world: World, names: list[str]) -> Manager:
    from tradeloop.control.manager import Manager

    return Manager(
        project.store,
        project.clock,
        _controllers(names),
        lease_ttl=timedelta(seconds=30),
        extras={"world": world},
    )


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def serve(
        spec: SpecOpt = None,
        host: HostOpt = "127.0.0.1",
        port: PortOpt = 8080,
        tls_cert: CertOpt = None,
        tls_key: KeyOpt = None,
        tls_client_ca: ClientCaOpt = None,
    ) -> None:
        """Serve the deployed versions (MLflow /invocations, KServe v2, trading endpoints)."""
        from tradeloop.control.world import World
        from tradeloop.serving.server import serve as run
        from tradeloop.serving.tls import tls_options

        tls = tls_options(tls_cert, tls_key, tls_client_ca)
        project = load_project(spec)
        world = World.open(project)
        scheme = "https" if tls else "http"
        err.print(f"serving {project.spec.name} on {scheme}://{host}:{port}")
        run(_app(project, world), host=host, port=port, **tls)

    @app.command()
    @handle_errors
    def up(spec: SpecOpt = None, host: HostOpt = "127.0.0.1", port: PortOpt = 8080) -> None:
        """Gateway and all controllers in one process (the embedded default)."""
        from tradeloop.control.world import World
        from tradeloop.serving.server import serve as run

        project = load_project(spec)
        world = World.open(project)
        manager = _manager(project, world, list(CONTROLLERS))
        stop = threading.Event()
        thread = threading.Thread(
            target=manager.run_forever, args=(stop,), name="controllers", daemon=True
        )
        thread.start()
        err.print(
            f"tradeloop up: {project.spec.name} on http://{host}:{port}, controllers "
            f"{', '.join(CONTROLLERS)}"
        )
        try:
            run(_app(project, world), host=host, port=port)
        finally:
            stop.set()
            thread.join(timeout=30)

    @app.command()
    @handle_errors
    def deploy(
        version: Annotated[str | None, typer.Argument(help="Registered version.")] = None,
        spec: SpecOpt = None,
        json_: JsonOpt = False,
        weight: Annotated[
            int | None, typer.Option(help="Live share (%) for VERSION as the challenger.")
        ] = None,
        shadow: Annotated[bool, typer.Option(help="VERSION scores a copy of traffic.")] = False,
        rollback: Annotated[
            bool, typer.Option(help="Remove the challenger: champion 100%.")
        ] = False,
        token: TokenOpt = None,
        override_approval: Annotated[
            bool,
            typer.Option(
                "--override-approval",
                help="Break glass: live traffic for an unapproved version (admin; alerts).",
            ),
        ] = False,
        reason: Annotated[
            str | None, typer.Option(help="Why (recorded; required with --override-approval).")
        ] = None,
    ) -> None:
        """Set what serves by hand (operator token; audited under its user).

        Under `deployment.approval: manual` a version gets live traffic only once approved.
        With sticky symbols a --weight must be one the symbols can express (see
        control.canary_units): 10% of four symbols is refused, listing 25, 50, 75.
        """
        from tradeloop.control.canary_units import check_weight
        from tradeloop.registry.mlflow_registry import Registry
        from tradeloop.security.approvals import require_live_approval
        from tradeloop.store import deployments as dep

        project = load_project(spec)
        who = caller(project, token, "operator", "deploy")
        name = project.spec.name
        split = None
        current = {d.variant: d for d in dep.current(project.store, name)}
        champ = current.get("champion")
        if rollback:
            if version is not None or weight is not None or shadow:
                raise BadInput("--rollback takes no VERSION, --weight or --shadow")
            if champ is None:
                raise BadInput("nothing is deployed")
            want = [dep.Deployed(name, "champion", champ.version, "live", 100)]
        else:
            if version is None:
                raise BadInput("give a VERSION (or --rollback)")
            if weight is not None and shadow:
                raise BadInput("--weight and --shadow exclude each other")
            if weight is not None and not 0 < weight < 100:
                raise BadInput(f"--weight must be between 1 and 99, got {weight}")
            reg = Registry.for_project(project)
            v = reg.get(name, version)
            if v.rejected:
                raise BadInput(f"v{version} was rejected; it cannot be deployed")
            goes_live = not shadow and (champ is None or champ.version != version)
            if weight is not None and project.spec.sticky_units:
                split = check_weight(weight, project.spec.sticky_units, "deploy --weight")
            if goes_live:
                require_live_approval(
                    project.store,
                    project.spec.deployment.approval,
                    name,
                    version,
                    who,
                    "deploy",
                    override_reason=(reason or "") if override_approval else None,
                )
            if champ is None or (weight is None and not shadow):
                want = [dep.Deployed(name, "champion", version, "live", 100)]
            elif shadow:
                want = [
                    dep.Deployed(name, "champion", champ.version, "live", 100),
                    dep.Deployed(name, "challenger", version, "shadow", 0),
                ]
            else:
                want = [
                    dep.Deployed(name, "champion", champ.version, "live", 100 - (weight or 0)),
                    dep.Deployed(name, "challenger", version, "live", weight or 0),
                ]
        after = dep.apply(
            project.store,
            name,
            want,
            actor=who.actor,
            reason=(reason or "rollback") if rollback else (reason or f"deploy v{version}"),
        )
        doc: dict[str, object] = {"serving": [d.to_dict() for d in after], "actor": who.actor}
        if split is not None:
            doc["split"] = split.to_dict()
        if json_:
            emit_json(doc)
        else:
            for d in after:
                out.print(f"{d.variant:<10} v{d.version:<4} {d.mode:<6} {d.weight}%")
            if split is not None:
                out.print(
                    f"challenger gets {split.units} of {split.total} symbols "
                    f"({split.realized:.3g}% of units)"
                )

    @app.command()
    @handle_errors
    def status(spec: SpecOpt = None, json_: JsonOpt = False) -> None:
        """Desired (git) vs actual (registry, serving) per controller, rollout, proposals."""
        from tradeloop.control.status_report import status_report

        project = load_project(spec)
        doc = status_report(project)
        if json_:
            emit_json(doc)
            return
        d, a = doc["desired"], doc["actual"]
        out.print(
            f"[bold]{project.spec.name}[/bold]  git {d['branch']}@{(d['commit'] or '')[:10]}"
            f" pins v{d['pinned']}; champion v{a['champion']}; in sync: {doc['in_sync']}"
        )
        for s in a["serving"]:
            out.print(
                f"  serving {s['variant']:<10} v{s['version']:<4} {s['mode']:<6} {s['weight']}%"
            )
        split = doc.get("canary_split")
        if split and "units" in split:
            out.print(
                f"  canary target {split['target_pct']}%: challenger has {split['units']} of "
                f"{split['total_units']} sticky units ({split['realized_units_pct']:.3g}%)"
            )
        if doc["rollout"]:
            r = doc["rollout"]
            out.print(f"  rollout v{r['version']}: {r['phase']} step {r['step']} — {r['reason']}")
        for p in doc["proposals"]:
            out.print(f"  proposal {p['branch']} ({p['state']})")
        for c in doc["controllers"]:
            out.print(
                f"  controller {c['controller']:<9} {c.get('outcome') or '-':<8} "
                f"{c.get('message') or ''}",
                markup=False,
            )
        for al in doc["alerts"]:
            out.print(f"  alert {al['rule']} {al['state']}")

    @app.command()
    @handle_errors
    def drift(
        reference: Annotated[Path, typer.Argument(help="Reference CSV, Parquet or profile JSON.")],
        current: Annotated[Path, typer.Argument(help="Current CSV or Parquet.")],
        json_: JsonOpt = False,
        html: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
    ) -> None:
        """Per-column drift between two files: method, statistic, threshold, drifted."""
        from tradeloop.monitoring.drift import compare_files

        report = compare_files(reference, current)
        if html is not None:
            html.write_text(report.to_html())
        if json_:
            emit_json(report.to_dict())
            return
        for c in report.columns:
            flag = "[red]DRIFT[/red]" if c.drifted else "ok"
            out.print(
                f"{c.column:<24} {c.method:<14} {c.statistic:>12.6g} "
                f"(threshold {c.threshold:g})  {flag}"
            )
        out.print(
            f"drifted {len(report.drifted_columns)}/{len(report.columns)} columns "
            f"(share {report.share:.2f})"
        )

    @controller_app.command("run")
    @handle_errors
    def controller_run(
        names: Annotated[list[str], typer.Argument(help="trainer, deployer and/or monitor.")],
        spec: SpecOpt = None,
        once: Annotated[bool, typer.Option(help="One pass, then exit.")] = False,
    ) -> None:
        """Run controllers under a leader lease (start several replicas on PostgreSQL)."""
        from tradeloop.control.world import World

        project = load_project(spec)
        manager = _manager(project, World.open(project), names)
        if once:
            for r in manager.run_once():
                out.print(f"{r.controller}: {r.outcome} {r.message}", markup=False)
            manager.release_all()
            return
        stop = threading.Event()
        try:
            manager.run_forever(stop)
        except KeyboardInterrupt:
            stop.set()

    @monitor_app.command("report")
    @handle_errors
    def report(
        spec: SpecOpt = None,
        json_: JsonOpt = False,
        html: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
    ) -> None:
        """Drift, live performance, alerts and experiment state of the deployed versions."""
        from tradeloop.control.status_report import monitor_document
        from tradeloop.monitoring.report import to_html

        project = load_project(spec)
        doc = monitor_document(project)
        if html is not None:
            html.write_text(to_html(doc))
        if json_:
            emit_json(doc)
        else:
            out.print_json(data=doc)

    app.add_typer(controller_app, name="controller")
    app.add_typer(monitor_app, name="monitor")
