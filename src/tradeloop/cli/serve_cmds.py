"""`tradeloop serve`: the gateway alone, in one process or in N supervised workers."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

import typer

from tradeloop.cli._common import PipelineOpt, SpecOpt, err, handle_errors, load_projects
from tradeloop.cli.run_cmds import (
    CertOpt,
    ClientCaOpt,
    GrpcPortOpt,
    HostOpt,
    KeyOpt,
    PortOpt,
    _grpc_note,
    _names,
    _observe,
    _report_broken,
    _serve_gateway,
)
from tradeloop.errors import BadInput

WorkersOpt = Annotated[
    int,
    typer.Option(
        "--workers",
        min=1,
        help="Gateway processes sharing the port (the kernel spreads connections). They "
        "share deployments and hot swaps (each polls the store), metrics (/metrics on any is "
        "all of them: prometheus-client multiprocess mode), online features (each bar is "
        "forwarded to every worker); each writes its own prediction-log files as "
        "<gateway-id>-w<i>; gRPC is served by worker 0. A dead worker is restarted.",
    ),
]
GatewayIdOpt = Annotated[
    str | None,
    typer.Option(
        envvar="TRADELOOP_GATEWAY_ID",
        help="This replica's name in the store and on its prediction-log files "
        "(default: the host name; give each replica on one host its own).",
    ),
]


def worker_gateway(
    spec: Path | None,
    pipeline: str | None,
    host: str,
    grpc_port: int | None,
    gateway_id: str | None,
) -> Any:
    """One worker's gateway, built in the worker process (`serving.workers`)."""
    from tradeloop.control.assembly import assemble

    projects, _ = load_projects(spec, pipeline)
    _observe("tradeloop-gateway")
    proc = assemble(
        projects[0],
        (),
        gateway=True,
        grpc_host=host,
        grpc_port=grpc_port,
        pipelines=projects,
        gateway_id=gateway_id,
    )
    return proc.app


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def serve(
        spec: SpecOpt = None,
        pipeline: PipelineOpt = None,
        host: HostOpt = "127.0.0.1",
        port: PortOpt = 8080,
        grpc_port: GrpcPortOpt = None,
        tls_cert: CertOpt = None,
        tls_key: KeyOpt = None,
        tls_client_ca: ClientCaOpt = None,
        gateway_id: GatewayIdOpt = None,
        workers: WorkersOpt = 1,
    ) -> None:
        """Serve the deployed versions (MLflow /invocations, KServe v2, trading endpoints)."""
        from tradeloop.serving.tls import tls_options

        tls = tls_options(tls_cert, tls_key, tls_client_ca)
        projects, broken = load_projects(spec, pipeline)
        project = projects[0]
        _observe("tradeloop-gateway")
        if gateway_id is not None and not gateway_id.strip():
            raise BadInput("--gateway-id must not be empty")
        scheme = "https" if tls else "http"
        _report_broken(broken)
        where = f"{scheme}://{host}:{port}{_grpc_note(project, grpc_port)}"
        if workers > 1:
            from tradeloop.serving.workers import WorkerPlan, run_workers

            build = functools.partial(worker_gateway, spec, pipeline, host, grpc_port, gateway_id)
            plan = WorkerPlan(build, host, port, workers, {"log_config": None, **tls})
            err.print(f"serving {_names(projects)} on {where} with {workers} workers")
            run_workers(plan)
            return
        from tradeloop.control.assembly import assemble

        proc = assemble(
            project,
            (),
            gateway=True,
            grpc_host=host,
            grpc_port=grpc_port,
            pipelines=projects,
            gateway_id=gateway_id,
        )
        err.print(f"serving {_names(projects)} on {where}")
        _serve_gateway(proc, host, port, **tls)
