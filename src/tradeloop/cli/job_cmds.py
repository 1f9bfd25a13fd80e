"""`job run` (one training job: what the trainer launches and a Kubernetes Job runs) and
`jobs list` (their lifecycle)."""

from __future__ import annotations

from typing import Annotated

import typer

from tradeloop.cli._common import (
    JsonOpt,
    PipelineOpt,
    SpecOpt,
    emit_json,
    handle_errors,
    load_project,
    load_projects,
    out,
)
from tradeloop.cli.train_metrics import (
    TrainMetricsHostOpt,
    TrainMetricsLingerOpt,
    TrainMetricsPortOpt,
    serving,
)
from tradeloop.errors import BadInput

job_app = typer.Typer(help="Run one training job.", no_args_is_help=True)
jobs_app = typer.Typer(help="Training jobs and their lifecycle.", no_args_is_help=True)


@job_app.command("run")
@handle_errors
def run(
    spec: SpecOpt = None,
    pipeline: PipelineOpt = None,
    job: Annotated[
        int | None, typer.Option("--job", help="The queued job to run (its id).", min=1)
    ] = None,
    trigger: Annotated[
        str | None, typer.Option(help="Without --job: record a new job for this trigger key.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Without --job: why it trains.")] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Train on the data as of this ISO time (the trainer's now)."),
    ] = None,
    commit: Annotated[
        str | None, typer.Option(help="Train the spec committed here (default: the spec file).")
    ] = None,
    json_: JsonOpt = False,
    metrics_port: TrainMetricsPortOpt = 0,
    metrics_host: TrainMetricsHostOpt = "127.0.0.1",
    metrics_linger: TrainMetricsLingerOpt = 0.0,
) -> None:
    """Train once as a job, recording it running, then succeeded or failed (exit 0, 1 or 2)."""
    from tradeloop.control.job_run import run_job

    _yield_cpu()
    name = load_project(spec, pipeline).spec.name if metrics_port else ""
    with serving(name, metrics_host, metrics_port, metrics_linger) as metrics:
        doc = run_job(
            spec,
            job_id=job,
            trigger=trigger,
            reason=reason,
            as_of=as_of,
            commit=commit,
            pipeline=pipeline,
            say=(lambda _line: None) if json_ else (lambda line: out.print(line, markup=False)),
            metrics=metrics,
        )
    if json_:
        emit_json(doc)


JOB_NICE_ENV = "TRADELOOP_JOB_NICE"


def _yield_cpu() -> None:
    """A job lowers its own CPU priority (nice 10; $TRADELOOP_JOB_NICE, 0 to keep it): on a
    laptop under `tradeloop up` the gateway shares the cores with training, and a training
    at equal priority doubled its single-row p99 (`bench/scale.py`). In a Kubernetes Job, on
    its own node or CPU quota, it changes nothing."""
    import os

    raw = os.environ.get(JOB_NICE_ENV, "10")
    try:
        nice = int(raw)
    except ValueError as exc:
        raise BadInput(f"${JOB_NICE_ENV} must be an integer 0..19, not {raw!r}") from exc
    if not 0 <= nice <= 19:
        raise BadInput(f"${JOB_NICE_ENV} must be an integer 0..19, not {raw!r}")
    if nice:
        os.nice(nice)


@jobs_app.command("list")
@handle_errors
def list_(
    spec: SpecOpt = None,
    pipeline: PipelineOpt = None,
    status: Annotated[
        str | None, typer.Option(help="Only jobs in this status (queued, running, ...).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1)] = 50,
    json_: JsonOpt = False,
) -> None:
    """Training jobs (of every pipeline, or one), newest first: status, start, end, exit
    status, log file, trigger."""
    from tradeloop.store import jobs

    projects, _ = load_projects(spec, pipeline)
    found = sorted(
        (
            j
            for p in projects
            for j in jobs.list_jobs(p.store, p.spec.name, status=status, limit=limit)
        ),
        key=lambda j: j.id,
        reverse=True,
    )[:limit]
    if json_:
        emit_json([j.to_dict() for j in found])
        return
    if not found:
        out.print("no jobs")
        return
    for j in found:
        start = j.started_at.isoformat(timespec="seconds") if j.started_at else "-"
        end = j.ended_at.isoformat(timespec="seconds") if j.ended_at else "-"
        code = "-" if j.exit_code is None else str(j.exit_code)
        out.print(
            f"{j.id:>4} {j.pipeline:<12} {j.status:<9} attempt {j.attempt} exit {code:<3} {start} → {end}"
            f"  {j.trigger_key} ({j.reason})\n      log {j.log_path or '-'}"
            + (f"\n      {j.message}" if j.message else ""),
            markup=False,
        )
