"""Running things: `serve`, `up`, `controller run`, `status`, `drift`, `monitor report`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tradeloop.cli._common import (
    JsonOpt,
    PipelineOpt,
    SpecOpt,
    emit_json,
    err,
    handle_errors,
    load_project,
    load_projects,
    out,
)

if TYPE_CHECKING:
    from tradeloop.control.assembly import Process
    from tradeloop.project import Project
    from tradeloop.spec.catalog import Broken

controller_app = typer.Typer(help="Run controllers as their own processes.", no_args_is_help=True)
monitor_app = typer.Typer(help="Monitoring reports.", no_args_is_help=True)

HostOpt = Annotated[str, typer.Option(help="Interface to listen on.")]
PortOpt = Annotated[int, typer.Option(help="Port to listen on.")]
GrpcPortOpt = Annotated[
    int | None,
    typer.Option(
        "--grpc-port",
        help="Also serve the Open Inference Protocol over gRPC on this port "
        "(default: deployment.serving.grpc_port; unset there: no gRPC).",
        min=0,
        max=65535,
    ),
]
CONTROLLERS = ("trainer", "deployer", "monitor")
MetricsPortOpt = Annotated[
    int | None, typer.Option(help="Serve Prometheus /metrics on this port (0: any free port).")
]
CertOpt = Annotated[Path | None, typer.Option(help="TLS certificate (PEM); serves HTTPS.")]
KeyOpt = Annotated[Path | None, typer.Option(help="TLS private key (PEM).")]
ClientCaOpt = Annotated[
    Path | None, typer.Option(help="CA bundle: require client certificates it signed (mTLS).")
]


def _names(projects: list[Project]) -> str:
    return ", ".join(p.spec.name for p in projects)


def _report_broken(broken: list[Broken]) -> None:
    """A pipeline that does not validate stops nothing else: say so, with its file and line."""
    for b in broken:
        err.print(f"[yellow]pipeline {b.name} ({b.relpath}) is parked:[/yellow] {b.error}")


def _grpc_note(project: Project, grpc_port: int | None) -> str:
    port = grpc_port if grpc_port is not None else project.spec.deployment.serving.grpc_port
    return "" if port is None else f" and gRPC on port {port}"


def _observe(service: str) -> None:
    """Structured logs and (when OTEL_* asks for it) tracing for a long-lived process."""
    from tradeloop.observability.logs import configure_logging
    from tradeloop.observability.tracing import configure_tracing

    configure_logging()
    configure_tracing(service)


def _serve_gateway(proc: Process, host: str, port: int, **tls: Any) -> None:
    from tradeloop.serving.server import serve as run

    assert proc.app is not None  # assembled with gateway=True
    # uvicorn's own loggers go through ours (one JSON object per line), not its handlers
    run(proc.app, host=host, port=port, log_config=None, **tls)


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def up(
        spec: SpecOpt = None,
        pipeline: PipelineOpt = None,
        host: HostOpt = "127.0.0.1",
        port: PortOpt = 8080,
        grpc_port: GrpcPortOpt = None,
    ) -> None:
        """Gateway and all controllers in one process (the embedded default).

        One gateway worker: the controllers read its request counts in-process. For more,
        run `tradeloop serve --workers N` beside `tradeloop controller run`."""
        from tradeloop.control.assembly import assemble

        projects, broken = load_projects(spec, pipeline)
        project = projects[0]
        _observe("tradeloop")
        proc = assemble(
            project,
            CONTROLLERS,
            gateway=True,
            grpc_host=host,
            grpc_port=grpc_port,
            pipelines=projects,
            broken=broken,
            jobs=True,
        )
        _report_broken(broken)
        stop = threading.Event()
        thread = threading.Thread(
            target=proc.manager.run_forever, args=(stop,), name="controllers", daemon=True
        )
        thread.start()
        roles = ", ".join(CONTROLLERS)
        for p in projects:
            if p.spec.data.stream is not None:
                import os

                from tradeloop.stream.service import start_in_thread

                base = f"http://{host}:{port}"
                if len(projects) > 1:
                    base += f"/pipelines/{p.spec.name}"
                start_in_thread(p, base, os.environ.get("TRADELOOP_TOKEN"), stop)
                roles += f", ingest ({p.spec.name})"
        err.print(
            f"tradeloop up: {_names(projects)} on http://{host}:{port}"
            f"{_grpc_note(project, grpc_port)}, controllers {roles}"
        )
        try:
            _serve_gateway(proc, host, port)
        finally:
            stop.set()
            thread.join(timeout=30)
            proc.close()

    @app.command()
    @handle_errors
    def status(spec: SpecOpt = None, pipeline: PipelineOpt = None, json_: JsonOpt = False) -> None:
        """Desired (git) vs actual (registry, serving) per controller, rollout, proposals."""
        from tradeloop.control.status_report import invalid_pipeline, status_report

        projects, broken = load_projects(spec, pipeline, share_store=False)
        docs = [status_report(p) for p in projects]
        invalid = [invalid_pipeline(projects[0], b.name, b.relpath, str(b.error)) for b in broken]
        if json_:
            multi = len(projects) + len(broken) > 1 or projects[0].in_pipelines_dir
            emit_json({"pipelines": docs, "invalid": invalid} if multi else docs[0])
            return
        for doc in docs:
            _print_status(doc)
        for bad in invalid:
            out.print(f"[bold]{bad['name']}[/bold]  {bad['file']}: INVALID")
            out.print(f"  {bad['error']}", markup=False)
            _print_controllers(bad["controllers"])
        if invalid:
            raise typer.Exit(1)

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
        pipeline: PipelineOpt = None,
        once: Annotated[
            bool, typer.Option(help="One pass, then exit (waiting for a training job it starts).")
        ] = False,
        in_process: Annotated[
            bool,
            typer.Option(
                "--in-process", help="Train in this process instead of a job (debugging, tests)."
            ),
        ] = False,
        metrics_host: HostOpt = "127.0.0.1",
        metrics_port: MetricsPortOpt = None,
        lease_ttl: Annotated[
            float,
            typer.Option(
                help="Seconds a leader's lease lasts unrenewed: how soon a replica takes over "
                "from a dead leader.",
                min=1.0,
            ),
        ] = 30.0,
        interval: Annotated[
            float | None,
            typer.Option(
                help="Seconds between a controller's passes at most (default: each "
                "controller's own: deployer 5 min, trainer 30 min, monitor its spec interval).",
                min=0.1,
            ),
        ] = None,
    ) -> None:
        """Run controllers under a leader lease (start several replicas on PostgreSQL).

        The trainer trains in `tradeloop job run` child processes (see `tradeloop jobs list`)."""
        from datetime import timedelta

        from tradeloop.control.assembly import assemble
        from tradeloop.observability.metrics_http import serve_metrics

        projects, broken = load_projects(spec, pipeline)
        _observe("tradeloop-controllers")
        proc = assemble(
            projects[0],
            names,
            pipelines=projects,
            broken=broken,
            jobs=not in_process,
            wait_jobs=once,
            lease_ttl=timedelta(seconds=lease_ttl),
            interval=None if interval is None else timedelta(seconds=interval),
        )
        _report_broken(broken)
        manager = proc.manager
        if once:
            for r in manager.run_once():
                out.print(f"{r.controller}: {r.outcome} {r.message}", markup=False)
            manager.release_all()
            proc.close()
            return
        server = None
        if metrics_port is not None:
            server = serve_metrics(proc.registry, metrics_host, metrics_port)
            err.print(f"metrics on http://{metrics_host}:{server.port}/metrics")
        stop = threading.Event()
        try:
            manager.run_forever(stop)
        except KeyboardInterrupt:
            stop.set()
        finally:
            proc.close()
            if server is not None:
                server.close()

    @monitor_app.command("report")
    @handle_errors
    def report(
        spec: SpecOpt = None,
        pipeline: PipelineOpt = None,
        json_: JsonOpt = False,
        html: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
    ) -> None:
        """Drift, live performance, alerts and experiment state of the deployed versions."""
        from tradeloop.control.status_report import monitor_document
        from tradeloop.monitoring.report import to_html

        project = load_project(spec, pipeline)
        doc = monitor_document(project)
        if html is not None:
            html.write_text(to_html(doc))
        if json_:
            emit_json(doc)
        else:
            out.print_json(data=doc)

    app.add_typer(controller_app, name="controller")
    app.add_typer(monitor_app, name="monitor")


def _print_status(doc: dict[str, Any]) -> None:
    d, a = doc["desired"], doc["actual"]
    if d.get("error"):
        out.print(f"[bold]{doc['name']}[/bold]  git {d['branch']}: INVALID")
        out.print(f"  {d['error']}", markup=False)
    else:
        out.print(
            f"[bold]{doc['name']}[/bold]  git {d['branch']}@{(d['commit'] or '')[:10]}"
            f" pins v{d['pinned']}; champion v{a['champion']}; in sync: {doc['in_sync']}"
        )
    for s in a["serving"]:
        out.print(f"  serving {s['variant']:<10} v{s['version']:<4} {s['mode']:<6} {s['weight']}%")
    for g in a["gateways"]:
        answers = ", ".join(
            f"{v['variant']} v{v['serving_version']}"
            + ("" if v["loaded"] else f" (deployed v{v['deployed_version']})")
            for v in g["variants"]
        )
        out.print(
            f"  gateway {g['gateway']} {g['state']}: {answers or 'nothing'}"
            f" (reported {g['reported_at']})",
            markup=False,
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
        _print_split_check(r.get("last_analysis") or {})
    for p in doc["proposals"]:
        out.print(f"  proposal {p['branch']} ({p['state']})")
    _print_controllers(doc["controllers"])
    for al in doc["alerts"]:
        out.print(f"  alert {al['rule']} {al['state']}")


def _print_split_check(v: dict[str, Any]) -> None:
    """The realized request share and both sample-ratio checks of the last analysis."""
    reqs = v.get("requests") or (0, 0)
    if sum(reqs):
        keys = ("srm_requests_p_value", "srm_units_p_value")
        p = {k: "n/a" if v.get(k) is None else f"{v[k]:.3g}" for k in keys}
        out.print(
            f"  challenger got {100 * reqs[1] / sum(reqs):.3g}% of {sum(reqs)} scored requests;"
            f" sample-ratio p: requests {p[keys[0]]}, units {p[keys[1]]}"
        )


def _print_controllers(controllers: list[dict[str, Any]]) -> None:
    for c in controllers:
        parked = c.get("parked")
        state = f"PARKED ({parked['reason']})" if parked else c.get("outcome") or "-"
        out.print(
            f"  controller {c['controller']:<9} {state:<8} {c.get('message') or ''}",
            markup=False,
        )
