"""The body of `tradeloop job run`: one training job, in its own process.

The trainer's job runner launches it as a child; a Kubernetes Job runs the very same command.
It trains the spec committed at `--commit` (what the trainer read from git), as of `--as-of`
(the trainer's clock time, so a simulated clock stays point-in-time), and records the job's
lifecycle in the store: running with this pid, then succeeded or failed with its exit status.
Before training it finishes what a killed earlier attempt left (`recover_training`): if that
attempt's version was already complete, the trigger is done and nothing is trained again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tradeloop.clock import OffsetClock, utc
from tradeloop.errors import BadInput, TradeloopError
from tradeloop.project import Project
from tradeloop.spec import Spec
from tradeloop.store import jobs
from tradeloop.store.tables import training_triggers

if TYPE_CHECKING:
    from tradeloop.training.run_metrics import TrainingMetrics

Say = Callable[[str], None]


def _say(line: str) -> None:
    print(line, flush=True)  # the log file is our stdout


def parse_as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError as exc:
        raise BadInput(
            f"--as-of {text!r} is not an ISO time (e.g. 2030-01-01T00:00:00+00:00)"
        ) from exc


def spec_at(project: Project, commit: str | None) -> tuple[Spec, str | None]:
    """The spec committed at `commit` (and the full sha), or the spec file without one."""
    if commit is None:
        return project.spec, None
    from tradeloop.gitops.repo import GitRepo
    from tradeloop.spec.catalog import parse_pipeline

    repo = GitRepo(project.root)
    sha = repo.head(commit)
    if sha is None:
        raise BadInput(f"--commit {commit!r}: no such commit in {project.root}")
    path = repo.rel(project.spec_relpath)  # the pipeline's own file (pipelines/<name>.yaml)
    text = repo.read_file(sha, path)
    if text is None:
        raise BadInput(f"--commit {commit[:12]}: no {path} committed there")
    return parse_pipeline(text, project.spec_relpath, filename=f"{sha[:12]}:{path}"), sha


def _trigger_status(project: Project, name: str, key: str) -> str | None:
    with project.store.engine.connect() as c:
        return c.execute(
            select(training_triggers.c.status).where(
                training_triggers.c.model_name == name, training_triggers.c.trigger_key == key
            )
        ).scalar()


def _train(
    job: jobs.Job,
    base: Project,
    as_of: datetime | None,
    commit: str | None,
    say: Say,
    metrics: TrainingMetrics | None = None,
) -> dict[str, Any]:
    spec, sha = spec_at(base, commit)
    if spec.name != job.pipeline:
        raise BadInput(f"job {job.id} is for pipeline {job.pipeline!r}, the spec is {spec.name!r}")
    from tradeloop.training.pipeline import recover_training, train  # MLflow: after the checks

    project = Project(spec, base.spec_path, base.clock)
    project._store = base.store
    rec = recover_training(project, "trainer")
    if rec.finished or rec.cleanup:
        say(f"recovered after an earlier attempt: {rec.to_dict()}")
    status = _trigger_status(project, spec.name, job.trigger_key)
    if status is not None and status != "running":
        say(f"trigger {job.trigger_key} is already {status}: nothing to train")
        return {"version": None, "trigger_status": status, "skipped": True}
    tags = {"tradeloop.trigger": job.trigger_key}
    if sha is not None:
        tags["tradeloop.spec_commit"] = sha
    result = train(
        project,
        reason=job.reason,
        actor="trainer",
        as_of=as_of,
        extra_tags=tags,
        on_step=lambda s: _step(s, say, metrics),
        on_trial=metrics.trial if metrics is not None else None,
    )
    say(
        f"{'registered v' + result.version if result.version else 'gated'} in {result.seconds:.1f}s"
    )
    return {
        "version": result.version,
        "run_id": result.run_id,
        "sharpe": result.metrics.get("sharpe"),
        "failed_gates": result.gates.get("failed", []),
        "seconds": round(result.seconds, 2),
    }


def _step(name: str, say: Say, metrics: TrainingMetrics | None) -> None:
    say(f"step: {name}")
    if metrics is not None:
        metrics.step(name)


def run_job(
    spec_path: Path | None,
    *,
    job_id: int | None,
    trigger: str | None,
    reason: str | None,
    as_of: str | None,
    commit: str | None,
    say: Say = _say,
    pipeline: str | None = None,
    metrics: TrainingMetrics | None = None,
) -> dict[str, Any]:
    """Run one job to its end; its outcome, or the error (already recorded as failed).
    `metrics` follows the training's phases, folds and trials (`--metrics-port`)."""
    when = parse_as_of(as_of)
    clock = OffsetClock(when) if when is not None else None
    base = Project.load(spec_path, clock, pipeline=pipeline)
    store = base.store
    if job_id is None:
        if not trigger or not reason:
            raise BadInput("give --job ID, or both --trigger KEY and --reason TEXT")
        new = jobs.enqueue(store, base.spec.name, trigger, reason)  # checked against --commit
        assert new is not None  # no parallel limit asked
        job_id = new.id
    elif trigger or reason:
        raise BadInput("--job takes its trigger and reason from the job; drop --trigger/--reason")
    job = jobs.get(store, job_id)
    if not jobs.mark_running(store, job.id, os.getpid()):
        raise BadInput(f"job {job.id} is {job.status}, not queued: a job runs once")
    say(f"job {job.id} {job.pipeline} {job.trigger_key} attempt {job.attempt} pid {os.getpid()}")
    try:
        result = _train(job, base, when, commit, say, metrics)
    except TradeloopError as exc:
        jobs.finish(store, job.id, succeeded=False, exit_code=exc.exit_code, message=str(exc))
        raise
    except BaseException as exc:
        jobs.finish(
            store, job.id, succeeded=False, exit_code=1, message=f"{type(exc).__name__}: {exc}"
        )
        raise
    message = (
        f"registered v{result['version']}"
        if result.get("version")
        else (
            "nothing to train" if result.get("skipped") else f"gated: {result.get('failed_gates')}"
        )
    )
    jobs.finish(store, job.id, succeeded=True, exit_code=0, message=message, result=result)
    say(f"job {job.id} succeeded: {message}")
    sys.stdout.flush()
    return {"job": job.id, "message": message, **result}
