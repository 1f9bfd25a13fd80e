"""Training jobs: one row per training process, queued → running → succeeded | failed.

A job is a real process (a child of the trainer, or a Kubernetes Job running the same
`tradeloop job run`), so its times are wall-clock times, whatever clock the trainer keeps; the
training's point in time is its `as_of`. Every transition is one guarded UPDATE (`WHERE status
IN (...)`), so a job starts once and ends once even when the job itself, the runner that reaped
it and a restarted trainer all try to close it. Admission (`enqueue`) counts the queued and
running jobs of the whole store in the inserting transaction, so `max_parallel` holds across
processes: SQLite serializes writers (BEGIN IMMEDIATE), PostgreSQL takes an advisory lock.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select, text, update

from tradeloop.clock import utc
from tradeloop.errors import BadInput
from tradeloop.store import Store
from tradeloop.store.tables import jobs

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
ACTIVE = (QUEUED, RUNNING)
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED)
KINDS = ("train",)
_ADMISSION_LOCK = 0x6A6F6273  # 'jobs': PostgreSQL advisory lock key for admission


def wall_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Job:
    id: int
    pipeline: str
    kind: str
    trigger_key: str
    reason: str
    status: str
    attempt: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None
    log_path: str | None
    host: str | None
    pid: int | None
    message: str
    result: dict[str, Any] | None
    reported_at: datetime | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k in ("created_at", "started_at", "ended_at", "reported_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d


def _job(row: Any) -> Job:
    m = dict(row._mapping)
    for k in ("created_at", "started_at", "ended_at", "reported_at"):
        m[k] = utc(m[k]) if m[k] is not None else None
    m["message"] = m["message"] or ""
    return Job(**m)


def _lock_admission(c: Connection) -> None:
    if c.dialect.name == "postgresql":
        c.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADMISSION_LOCK})


def count_active(c: Connection) -> int:
    return int(c.execute(select(func.count()).where(jobs.c.status.in_(ACTIVE))).scalar() or 0)


def enqueue(
    store: Store,
    pipeline: str,
    trigger_key: str,
    reason: str,
    *,
    attempt: int = 1,
    kind: str = "train",
    max_parallel: int | None = None,
) -> Job | None:
    """A new queued job; None when `max_parallel` jobs are already queued or running.

    The same (pipeline, trigger, attempt) twice is refused by the unique constraint
    (IntegrityError): two runners cannot both launch one attempt."""
    if kind not in KINDS:
        raise BadInput(f"job kind {kind!r} is not one of {', '.join(KINDS)}")
    if attempt < 1:
        raise BadInput(f"job attempt must be >= 1, got {attempt}")
    if max_parallel is not None and max_parallel < 1:
        raise BadInput(f"max_parallel_jobs must be >= 1, got {max_parallel}")
    with store.begin() as c:
        _lock_admission(c)
        if max_parallel is not None and count_active(c) >= max_parallel:
            return None
        res = c.execute(
            jobs.insert().values(
                pipeline=pipeline,
                kind=kind,
                trigger_key=trigger_key,
                reason=reason,
                status=QUEUED,
                attempt=attempt,
                created_at=wall_now(),
                message="",
            )
        )
        key = res.inserted_primary_key
        assert key is not None
        new_id = key[0]
    return get(store, int(new_id))


def get(store: Store, job_id: int) -> Job:
    with store.engine.connect() as c:
        row = c.execute(select(jobs).where(jobs.c.id == job_id)).first()
    if row is None:
        raise BadInput(f"no job {job_id} in the store (see `tradeloop jobs list`)")
    return _job(row)


def _transition(store: Store, job_id: int, frm: tuple[str, ...], **values: Any) -> bool:
    with store.begin() as c:
        res = c.execute(
            update(jobs).where(jobs.c.id == job_id, jobs.c.status.in_(frm)).values(**values)
        )
    return res.rowcount == 1


def set_log(store: Store, job_id: int, log_path: str) -> None:
    with store.begin() as c:
        c.execute(update(jobs).where(jobs.c.id == job_id).values(log_path=log_path))


def mark_running(store: Store, job_id: int, pid: int, host: str | None = None) -> bool:
    """queued → running, with the process that runs it; False if it was not queued."""
    return _transition(
        store,
        job_id,
        (QUEUED,),
        status=RUNNING,
        started_at=wall_now(),
        pid=pid,
        host=host or socket.gethostname(),
    )


def finish(
    store: Store,
    job_id: int,
    *,
    succeeded: bool,
    exit_code: int | None,
    message: str = "",
    result: dict[str, Any] | None = None,
) -> bool:
    """queued|running → succeeded|failed, once: False if the job had already ended."""
    return _transition(
        store,
        job_id,
        ACTIVE,
        status=SUCCEEDED if succeeded else FAILED,
        ended_at=wall_now(),
        exit_code=exit_code,
        message=message[:4000],
        result=result,
    )


def mark_reported(store: Store, job_id: int) -> bool:
    """Claim the right to announce an ended job's outcome (events): True exactly once."""
    with store.begin() as c:
        res = c.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status.in_((SUCCEEDED, FAILED)))
            .where(jobs.c.reported_at.is_(None))
            .values(reported_at=wall_now())
        )
    return res.rowcount == 1


def list_jobs(
    store: Store,
    pipeline: str | None = None,
    *,
    status: str | None = None,
    trigger_key: str | None = None,
    limit: int = 50,
) -> list[Job]:
    """Newest first."""
    if status is not None and status not in STATUSES:
        raise BadInput(f"job status {status!r} is not one of {', '.join(STATUSES)}")
    if limit < 1:
        raise BadInput(f"--limit must be >= 1, got {limit}")
    q = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
    if pipeline is not None:
        q = q.where(jobs.c.pipeline == pipeline)
    if status is not None:
        q = q.where(jobs.c.status == status)
    if trigger_key is not None:
        q = q.where(jobs.c.trigger_key == trigger_key)
    with store.engine.connect() as c:
        return [_job(r) for r in c.execute(q)]


def active(store: Store, pipeline: str | None = None) -> list[Job]:
    with store.engine.connect() as c:
        q = select(jobs).where(jobs.c.status.in_(ACTIVE)).order_by(jobs.c.id)
        if pipeline is not None:
            q = q.where(jobs.c.pipeline == pipeline)
        return [_job(r) for r in c.execute(q)]


def latest(store: Store, pipeline: str, trigger_key: str) -> Job | None:
    """The newest attempt for this trigger."""
    found = list_jobs(store, pipeline, trigger_key=trigger_key, limit=1)
    return found[0] if found else None


def unreported(store: Store, pipeline: str) -> list[Job]:
    """Ended jobs whose outcome no trainer has announced yet, oldest first."""
    with store.engine.connect() as c:
        q = (
            select(jobs)
            .where(jobs.c.pipeline == pipeline, jobs.c.status.in_((SUCCEEDED, FAILED)))
            .where(jobs.c.reported_at.is_(None))
            .order_by(jobs.c.id)
        )
        return [_job(r) for r in c.execute(q)]
