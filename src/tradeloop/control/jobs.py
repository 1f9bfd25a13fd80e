"""The job runner: training as a child process, never in the trainer's (or gateway's) own.

`launch` admits a job (`store.jobs.enqueue`, under `training.max_parallel_jobs` counted in the
store, so the limit holds across processes) and starts `tradeloop job run` in its
own session, stdout and stderr to `<state_dir>/jobs/<id>.log`. It returns at once unless the
runner was made with `wait` (`controller run --once`). `reap` observes: a child that exited
without recording its end (SIGKILL, a crash) is marked failed with its exit status; one past
`training.job_timeout` is killed (its whole process group) and marked failed. Jobs this runner
did not start (a restarted trainer, another replica on this host) are judged from the store:
running with a pid on this host that no longer exists → failed; past the timeout → killed.
Retries and their backoff are the trainer's decision (`control/trainer.py`), per trigger.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from tradeloop.project import Project
from tradeloop.store import jobs
from tradeloop.store.leases import holder_is_dead


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    deadline: float  # time.monotonic()


def job_command() -> list[str]:
    """This installation's `tradeloop`: the console script beside our interpreter, else the
    interpreter importing the CLI (same code, same environment)."""
    script = Path(sys.executable).with_name("tradeloop")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from tradeloop.cli import main; main()"]


def backoff(base: timedelta, attempt: int) -> timedelta:
    """The wait before the retry that follows failed attempt `attempt` (1-based): base × 2^(n-1)."""
    return base * (1 << max(0, attempt - 1))


@dataclass
class JobRunner:
    """Launches and watches training jobs for one project; `command` is the job executable."""

    project: Project
    wait: bool = False
    command: list[str] = field(default_factory=lambda: job_command())
    _children: dict[int, _Child] = field(default_factory=dict, repr=False)

    @property
    def jobs_dir(self) -> Path:
        d = self.project.state_dir / "jobs"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def timeout(self, spec_timeout: timedelta | None = None) -> timedelta:
        limit: timedelta = spec_timeout or self.project.spec.training.job_timeout
        return limit

    def launch(
        self,
        pipeline: str,
        trigger_key: str,
        reason: str,
        *,
        attempt: int,
        as_of: datetime,
        commit: str | None,
        max_parallel: int,
        timeout: timedelta,
    ) -> jobs.Job | None:
        """Admit and start one attempt; None when `max_parallel` jobs are active already."""
        store = self.project.store
        job = jobs.enqueue(
            store, pipeline, trigger_key, reason, attempt=attempt, max_parallel=max_parallel
        )
        if job is None:
            return None
        log = self.jobs_dir / f"{job.id}.log"
        jobs.set_log(store, job.id, str(log))
        args = [
            *self.command,
            "job",
            "run",
            "--spec",
            str(self.project.spec_path),
            "--job",
            str(job.id),
            "--as-of",
            as_of.isoformat(),
        ]
        if commit is not None:
            args += ["--commit", commit]
        try:
            with log.open("ab") as f:
                proc = subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    cwd=self.project.root,
                    start_new_session=True,  # its own group: a timeout kills all it started
                )
        except OSError as exc:
            jobs.finish(store, job.id, succeeded=False, exit_code=None, message=f"launch: {exc}")
            raise
        self._children[job.id] = _Child(proc, time.monotonic() + timeout.total_seconds())
        if self.wait:
            self.wait_for(job.id, timeout)
        return jobs.get(store, job.id)

    def wait_for(self, job_id: int, timeout: timedelta) -> None:
        """Block until our child `job_id` ends (or is killed at its deadline), then reap."""
        child = self._children.get(job_id)
        if child is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=max(0.0, child.deadline - time.monotonic()))
        self.reap(timeout)

    def reap(self, timeout: timedelta | None = None, pipeline: str | None = None) -> list[int]:
        """Close the records of jobs that ended without saying so; the ids closed now.

        Jobs we did not start are judged only for `pipeline` when given (its own timeout)."""
        store, limit = self.project.store, self.timeout(timeout)
        closed = []
        for job_id, child in list(self._children.items()):
            rc = child.proc.poll()
            if rc is None and time.monotonic() < child.deadline:
                continue
            if rc is None:
                _kill_group(child.proc.pid)
                rc = child.proc.wait()
                msg = f"timed out after {limit}: killed (exit status {rc})"
            else:
                msg = f"exited with status {rc} without recording an outcome"
            del self._children[job_id]
            if jobs.finish(store, job_id, succeeded=False, exit_code=rc, message=msg):
                closed.append(job_id)
        closed += self._reap_orphans(limit, pipeline)
        return closed

    def _reap_orphans(self, limit: timedelta, pipeline: str | None) -> list[int]:
        store, host, closed = self.project.store, socket.gethostname(), []
        for j in jobs.active(store, pipeline):
            if j.id in self._children:
                continue
            ours = j.host == host and j.pid is not None
            if ours and j.status == jobs.RUNNING and holder_is_dead(f"{host}:{j.pid}"):
                msg = f"process {j.pid} is gone without recording an outcome (killed?)"
                if jobs.finish(store, j.id, succeeded=False, exit_code=None, message=msg):
                    closed.append(j.id)
                continue
            since = j.started_at or j.created_at
            if jobs.wall_now() - since > limit:
                if ours and j.pid is not None:
                    _kill_group(j.pid)
                msg = f"timed out after {limit} ({j.status} since {since.isoformat()})"
                if jobs.finish(store, j.id, succeeded=False, exit_code=None, message=msg):
                    closed.append(j.id)
        return closed

    def close(self) -> None:
        """Children keep running when the trainer stops: the next trainer observes them."""
        self._children.clear()


def _kill_group(pid: int) -> None:
    """SIGKILL the job's process group (it leads one when we launched it), else the process."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    except PermissionError:
        pass
