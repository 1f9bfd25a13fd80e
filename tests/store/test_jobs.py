"""Training jobs' lifecycle in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from tradeloop.errors import BadInput
from tradeloop.store import Store, jobs


def test_a_job_goes_queued_running_succeeded_once(store: Store) -> None:
    j = jobs.enqueue(store, "p", "initial", "no model exists")
    assert j is not None
    assert (j.status, j.attempt, j.kind, j.started_at, j.message) == (
        "queued",
        1,
        "train",
        None,
        "",
    )
    assert jobs.mark_running(store, j.id, pid=4242, host="h1")
    assert not jobs.mark_running(store, j.id, pid=4243)  # starts once
    running = jobs.get(store, j.id)
    assert (running.status, running.pid, running.host) == ("running", 4242, "h1")
    assert running.started_at is not None and running.started_at.tzinfo is not None
    assert jobs.finish(store, j.id, succeeded=True, exit_code=0, message="ok", result={"v": "1"})
    # ends once: a late reaper cannot turn a success into a failure
    assert not jobs.finish(store, j.id, succeeded=False, exit_code=-9, message="killed")
    done = jobs.get(store, j.id)
    assert (done.status, done.exit_code, done.message, done.result) == (
        "succeeded",
        0,
        "ok",
        {"v": "1"},
    )
    assert done.ended_at is not None and done.started_at is not None
    assert done.ended_at >= done.started_at
    assert not jobs.mark_running(store, j.id, pid=1)  # an ended job never runs again


def test_failure_is_recorded_with_exit_status_and_announced_once(store: Store) -> None:
    j = jobs.enqueue(store, "p", "alert:x", "alert x firing")
    assert j is not None
    jobs.set_log(store, j.id, "/tmp/1.log")
    assert jobs.finish(store, j.id, succeeded=False, exit_code=2, message="bad spec")
    assert [u.id for u in jobs.unreported(store, "p")] == [j.id]
    assert jobs.mark_reported(store, j.id)
    assert not jobs.mark_reported(store, j.id)
    assert jobs.unreported(store, "p") == []
    f = jobs.get(store, j.id)
    assert (f.status, f.exit_code, f.log_path) == ("failed", 2, "/tmp/1.log")
    assert f.to_dict()["ended_at"] is not None


def test_an_active_job_cannot_be_announced(store: Store) -> None:
    j = jobs.enqueue(store, "p", "k", "r")
    assert j is not None
    assert not jobs.mark_reported(store, j.id)


def test_the_parallel_limit_counts_every_active_job_in_the_store(store: Store) -> None:
    a = jobs.enqueue(store, "p", "k1", "r", max_parallel=2)
    b = jobs.enqueue(store, "q", "k1", "r", max_parallel=2)  # another pipeline counts too
    assert a is not None and b is not None
    assert jobs.mark_running(store, a.id, pid=1)
    assert jobs.enqueue(store, "p", "k2", "r", max_parallel=2) is None
    jobs.finish(store, b.id, succeeded=False, exit_code=1)
    c = jobs.enqueue(store, "p", "k2", "r", max_parallel=2)
    assert c is not None
    assert [j.id for j in jobs.active(store)] == [a.id, c.id]
    assert [j.id for j in jobs.active(store, "q")] == []


def test_one_attempt_of_a_trigger_is_one_job(store: Store) -> None:
    assert jobs.enqueue(store, "p", "k", "r", attempt=1) is not None
    with pytest.raises(IntegrityError):
        jobs.enqueue(store, "p", "k", "r", attempt=1)
    second = jobs.enqueue(store, "p", "k", "r", attempt=2)
    assert second is not None
    latest = jobs.latest(store, "p", "k")
    assert latest is not None and latest.attempt == 2
    assert jobs.latest(store, "p", "other") is None


def test_list_is_newest_first_and_filters(store: Store) -> None:
    ids = []
    for k in ("a", "b", "c"):
        j = jobs.enqueue(store, "p", k, "r")
        assert j is not None
        ids.append(j.id)
    jobs.finish(store, ids[1], succeeded=True, exit_code=0)
    assert [j.id for j in jobs.list_jobs(store, "p")] == ids[::-1]
    assert [j.id for j in jobs.list_jobs(store, "p", status="succeeded")] == [ids[1]]
    assert [j.id for j in jobs.list_jobs(store, "p", limit=1)] == [ids[2]]
    assert jobs.list_jobs(store, "nope") == []


def test_bad_inputs_are_refused_by_name(store: Store) -> None:
    with pytest.raises(BadInput, match="kind 'serve'"):
        jobs.enqueue(store, "p", "k", "r", kind="serve")
    with pytest.raises(BadInput, match="attempt must be >= 1"):
        jobs.enqueue(store, "p", "k", "r", attempt=0)
    with pytest.raises(BadInput, match="max_parallel_jobs must be >= 1"):
        jobs.enqueue(store, "p", "k", "r", max_parallel=0)
    with pytest.raises(BadInput, match="no job 99"):
        jobs.get(store, 99)
    with pytest.raises(BadInput, match="status 'done'"):
        jobs.list_jobs(store, status="done")


def test_racing_admissions_never_exceed_the_limit(store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        got = list(
            pool.map(lambda i: jobs.enqueue(store, "p", f"k{i}", "r", max_parallel=3), range(8))
        )
    assert sum(j is not None for j in got) == 3
    assert len(jobs.active(store)) == 3
