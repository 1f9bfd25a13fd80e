"""Training as job processes: real children, real SQLite and MLflow, killed for real.

A job that fails says so with its exit status and log; one past its timeout is killed; the
parallel limit holds for a second runner (another process's view of the store); a job
SIGKILLed mid-training is retried by the trainer and exactly one version is registered.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.control.test_loop import _cli, _project

from tradeloop.clock import SimulatedClock
from tradeloop.control.jobs import JobRunner, backoff
from tradeloop.control.manager import Manager
from tradeloop.control.trainer import TrainerController
from tradeloop.control.world import World
from tradeloop.project import Project
from tradeloop.store import jobs
from tradeloop.store.tables import events, training_triggers

FAST = {"  seed: 42": "  seed: 42\n  job_retry_backoff: 0s"}


def _world(root: Path) -> World:
    clock = SimulatedClock(datetime(2030, 1, 1, tzinfo=UTC))
    return World.open(Project(Project.load(root).spec, root / "tradeloop.yaml", clock))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return _project(tmp_path, **FAST)


def _launch(
    runner: JobRunner, key: str, *, commit: str | None, timeout: float = 60, limit: int = 2
) -> jobs.Job | None:
    return runner.launch(
        "loop",
        key,
        f"test {key}",
        attempt=1,
        as_of=datetime(2030, 1, 1, tzinfo=UTC),
        commit=commit,
        max_parallel=limit,
        timeout=timedelta(seconds=timeout),
    )


def test_backoff_doubles() -> None:
    base = timedelta(seconds=30)
    assert [backoff(base, n) for n in (1, 2, 3)] == [base, 2 * base, 4 * base]


def test_a_failing_job_records_its_exit_status_and_log(root: Path) -> None:
    w = _world(root)
    job = _launch(JobRunner(w.project, wait=True), "bad", commit="0123456789abcdef")
    assert job is not None
    assert (job.status, job.exit_code) == ("failed", 2)
    assert "no such commit" in job.message
    assert job.log_path == str(w.project.state_dir / "jobs" / f"{job.id}.log")
    assert "--commit '0123456789abcdef': no such commit" in Path(job.log_path).read_text()
    listed = _cli(root, "jobs", "list")
    assert listed.returncode == 0, listed.stderr
    assert "failed" in listed.stdout and "exit 2" in listed.stdout and job.log_path in listed.stdout
    again = _cli(root, "job", "run", "--job", str(job.id))  # an ended job never runs again
    assert again.returncode == 2 and "not queued" in again.stderr
    bad = _cli(root, "job", "run", "--as-of", "yesterday", "--trigger", "t", "--reason", "r")
    assert bad.returncode == 2 and "not an ISO time" in bad.stderr


def test_a_job_past_its_timeout_is_killed_and_the_limit_holds_meanwhile(root: Path) -> None:
    w = _world(root)
    runner = JobRunner(w.project)
    slow = _launch(runner, "slow", commit=None, timeout=1.5, limit=1)
    assert slow is not None and slow.status in ("queued", "running")
    other = JobRunner(_world(root).project, wait=True)  # a second trainer process's runner
    assert _launch(other, "second", commit=None, limit=1) is None
    runner.wait_for(slow.id, timedelta(seconds=1.5))
    killed = jobs.get(w.store, slow.id)
    assert (killed.status, killed.exit_code) == ("failed", -9)
    assert "timed out" in killed.message
    assert _launch(other, "second", commit="nope", limit=1) is not None  # a slot again


def _events(w: World) -> list[str]:
    with w.store.engine.connect() as c:
        return list(c.execute(select(events.c.action).order_by(events.c.id)).scalars())


def _kill_mid_training_then_retry(root: Path, point: str, monkeypatch: pytest.MonkeyPatch) -> World:
    w = _world(root)
    trainer = TrainerController(runner=JobRunner(w.project, wait=True))
    manager = Manager(w.store, w.clock, [trainer], extras={"world": w})
    monkeypatch.setenv("TRADELOOP_CRASH_AT", point)  # the job SIGKILLs itself there
    (first,) = manager.run_once()
    assert "failed" in first.message, first.message
    (j1,) = jobs.list_jobs(w.store, "loop")
    assert (j1.status, j1.exit_code) == ("failed", -9)
    monkeypatch.delenv("TRADELOOP_CRASH_AT")
    w.clock.advance(timedelta(hours=1))  # the trainer is due again
    (second,) = manager.run_once()
    assert second.outcome == "ok", second.message
    return w


def _one_version_registered(root: Path, w: World, lifecycle: list[tuple[int, str]]) -> None:
    (v,) = w.registry.versions("loop", include_incomplete=True)
    assert v.complete
    with w.store.engine.connect() as c:
        rows = c.execute(select(training_triggers)).all()
    assert [(t.trigger_key, t.status, t.version) for t in rows] == [
        ("initial", "registered", v.version)
    ]
    assert [(j.attempt, j.status) for j in jobs.list_jobs(w.store, "loop")] == lifecycle
    audit = w.store.audit.list()
    assert [e.subject for e in audit if e.action == "model.register"] == [f"model:loop/{v.version}"]
    verify = _cli(root, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_job_killed_mid_training_is_retried_and_registers_once(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _kill_mid_training_then_retry(root, "model_logged", monkeypatch)
    _one_version_registered(root, w, [(2, "succeeded"), (1, "failed")])
    acts = _events(w)
    assert acts.count("job_started") == 2
    assert acts.index("job_failed") < acts.index("registered")
    assert "job_succeeded" in acts
    (rec,) = [e for e in w.store.audit.list() if e.action == "training.recover"]
    assert len(rec.payload["failed_runs"]) == 1 and len(rec.payload["removed_models"]) == 1


@pytest.mark.slow
def test_a_job_killed_after_its_version_was_complete_is_finished_not_retrained(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _kill_mid_training_then_retry(root, "version_complete", monkeypatch)
    _one_version_registered(root, w, [(1, "failed")])  # recovered by the trainer: no new job
    assert "recovered" in _events(w)


@pytest.mark.slow
def test_retries_stop_at_the_limit_and_the_trigger_is_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(
        tmp_path, **{"  seed: 42": "  seed: 42\n  job_retries: 1\n  job_retry_backoff: 0s"}
    )
    w = _world(root)
    manager = Manager(
        w.store,
        w.clock,
        [TrainerController(runner=JobRunner(w.project, wait=True))],
        extras={"world": w},
    )
    monkeypatch.setenv("TRADELOOP_CRASH_AT", "run_started")
    messages = []
    for _ in range(3):
        messages += [r.message for r in manager.run_once()]
        w.clock.advance(timedelta(hours=1))
    assert "failed after 2 attempts" in messages[2], messages
    assert [j.status for j in jobs.list_jobs(w.store, "loop")] == ["failed", "failed"]
    with w.store.engine.connect() as c:
        assert c.execute(select(training_triggers.c.status)).scalar() == "failed"
    assert "training_failed" in _events(w)
    assert "already handled" in manager.run_once()[0].message  # not tried again
    assert w.registry.versions("loop") == []


@pytest.mark.slow
def test_controller_run_once_trains_in_a_child_process(root: Path) -> None:
    r = _cli(root, "controller", "run", "trainer", "--once")
    assert r.returncode == 0, r.stderr
    assert "job 1 succeeded: registered v1" in r.stdout
    listed = _cli(root, "jobs", "list", "--json")
    (doc,) = json.loads(listed.stdout)
    assert doc["status"] == "succeeded" and doc["exit_code"] == 0
    assert doc["pid"] != os.getpid() and doc["reason"] == "no model exists"
    assert "registered v1" in Path(doc["log_path"]).read_text()


@pytest.mark.slow
def test_a_job_killed_from_outside_mid_training_is_retried_into_one_version(root: Path) -> None:
    """The real thing: the trainer does not wait, the test SIGKILLs the job's pid while it
    trains, and the trainer's later reconciles see the failure and retry it."""
    import signal
    import time

    w = _world(root)
    manager = Manager(
        w.store, w.clock, [TrainerController(runner=JobRunner(w.project))], extras={"world": w}
    )
    (started,) = manager.run_once()
    assert "started" in started.message, started.message
    (job,) = jobs.list_jobs(w.store, "loop")
    assert job.log_path is not None
    deadline = time.monotonic() + 120
    while "step: backtest" not in Path(job.log_path).read_text():
        assert time.monotonic() < deadline, Path(job.log_path).read_text()
        time.sleep(0.05)
    pid = jobs.get(w.store, job.id).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while True:
        assert time.monotonic() < deadline + 120
        w.clock.advance(timedelta(seconds=3))  # past the trainer's 2 s requeue
        manager.run_once()
        listed = jobs.list_jobs(w.store, "loop")
        if not any(j.active for j in listed) and any(j.status == "succeeded" for j in listed):
            break
        time.sleep(0.2)
    assert [(j.attempt, j.status, j.exit_code) for j in listed] == [
        (2, "succeeded", 0),
        (1, "failed", -9),
    ]
    _one_version_registered(root, w, [(2, "succeeded"), (1, "failed")])
