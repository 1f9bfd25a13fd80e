"""The trainer's job mode: a claimed trigger is trained by a job process, observed later.

Reconciles stay short and level-based. `observe` reaps ended children, announces each ended
job once (`job_succeeded` then `registered`/`gated` as in-process training does, or
`job_failed`), and while a job of the pipeline is queued or running asks to look again soon.
`launch` decides the next attempt for a trigger from its jobs in the store: the first one; after
a failure a retry once `job_retry_backoff × 2^(n-1)` has passed, up to `job_retries` retries,
after which the trigger is marked `failed` (audited, `training_failed`) and not tried again.
A killed attempt leaves no half-registered version: the next holder of the training lease
cleans up (`recover_training`) before the retry trains.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from tradeloop.control.jobs import JobRunner, backoff
from tradeloop.control.reconciler import Context, Result
from tradeloop.spec import Spec
from tradeloop.store import Store, jobs
from tradeloop.store.tables import training_triggers

POLL = timedelta(seconds=2)  # how soon to look at a running job again


def report(ctx: Context, store: Store, name: str) -> list[str]:
    """Announce every ended, unannounced job of `name` once; what each did."""
    notes = []
    for j in jobs.unreported(store, name):
        if not jobs.mark_reported(store, j.id):
            continue  # another trainer announced it
        base: dict[str, Any] = {"job": j.id, "trigger": j.trigger_key, "attempt": j.attempt}
        if j.status == jobs.FAILED:
            ctx.emit(
                "job_failed", reason=j.message[:500], exit_code=j.exit_code, log=j.log_path, **base
            )
            notes.append(f"job {j.id} failed ({j.exit_code}): {j.message[:200]}")
            continue
        r = j.result or {}
        ctx.emit("job_succeeded", reason=j.message, **base)
        if r.get("version"):
            ctx.emit("registered", version=r["version"], reason=j.reason, sharpe=r.get("sharpe"))
        elif not r.get("skipped"):
            ctx.emit(
                "gated", reason=f"gates failed: {r.get('failed_gates')}", trigger=j.trigger_key
            )
        notes.append(f"job {j.id} succeeded: {j.message}")
    return notes


def observe(ctx: Context, store: Store, spec: Spec, runner: JobRunner) -> Result | None:
    """Reap and announce; a Result to return while a job of this pipeline is still active."""
    runner.reap(spec.training.job_timeout, spec.name)
    report(ctx, store, spec.name)
    active = jobs.active(store, spec.name)
    if not active:
        return None
    j = active[0]
    return Result(
        requeue_after=POLL,
        message=f"{j.trigger_key}: job {j.id} {j.status} (attempt {j.attempt}, log {j.log_path})",
    )


def _give_up(ctx: Context, store: Store, name: str, key: str, last: jobs.Job) -> None:
    with store.begin() as c:
        c.execute(
            update(training_triggers)
            .where(
                training_triggers.c.model_name == name,
                training_triggers.c.trigger_key == key,
                training_triggers.c.status == "running",
            )
            .values(status="failed", updated_at=store.clock.now())
        )
        store.audit.append(
            "trainer",
            "training.failed",
            f"model:{name}",
            {"trigger": key, "attempts": last.attempt, "job": last.id, "error": last.message},
            conn=c,
        )
    ctx.emit("training_failed", reason=last.message[:500], trigger=key, attempts=last.attempt)


def launch(
    ctx: Context,
    store: Store,
    spec: Spec,
    runner: JobRunner,
    key: str,
    reason: str,
    commit: str | None,
) -> Result:
    """Start the trigger's next attempt, wait out its backoff, or give up after the last."""
    t = spec.training
    last = jobs.latest(store, spec.name, key)
    attempt = 1 if last is None else last.attempt + 1
    if last is not None and last.status == jobs.FAILED:
        if last.attempt > t.job_retries:
            _give_up(ctx, store, spec.name, key, last)
            return Result(message=f"{key}: failed after {last.attempt} attempts: {last.message}")
        assert last.ended_at is not None  # an ended job has its end
        wait = last.ended_at + backoff(t.job_retry_backoff, last.attempt) - jobs.wall_now()
        if wait > timedelta(0):
            return Result(requeue_after=wait, message=f"{key}: attempt {attempt} in {wait}")
    try:
        job = runner.launch(
            spec.name,
            key,
            reason,
            attempt=attempt,
            as_of=ctx.clock.now(),
            commit=commit,
            max_parallel=t.max_parallel_jobs,
            timeout=t.job_timeout,
        )
    except IntegrityError:
        return Result(requeue_after=POLL, message=f"{key}: attempt {attempt} launched elsewhere")
    if job is None:
        return Result(
            requeue_after=POLL,
            message=f"{key}: waiting for a job slot ({t.max_parallel_jobs} jobs active)",
        )
    ctx.emit("train", reason=reason, trigger=key)
    ctx.emit("job_started", job=job.id, trigger=key, attempt=attempt, log=job.log_path)
    if runner.wait:  # the child has ended: say how
        report(ctx, store, spec.name)
        job = jobs.get(store, job.id)
        return Result(message=f"{key}: job {job.id} {job.status}: {job.message}")
    return Result(requeue_after=POLL, message=f"{key}: job {job.id} started (attempt {attempt})")
