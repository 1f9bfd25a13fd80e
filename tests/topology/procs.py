"""Real processes for topology tests: started with their own log file, always killed at the end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))
MLFLOW = str(Path(sys.executable).with_name("mlflow"))

T = TypeVar("T")


class Procs:
    """Every process a test starts; `close` kills whatever is still running."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.groups: set[int] = set()  # every process's own group, for `close`

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def start(
        self, name: str, argv: list[str], cwd: Path, env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        out = (self.logs / f"{name}.log").open("ab")
        # its own process group: what it starts (`mlflow server`'s uvicorn and huey workers, a
        # controller's training jobs) outlives it when it is stopped, and `close` ends those too
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=out, start_new_session=True
        )
        out.close()
        self.running[name] = proc
        self.groups.add(proc.pid)
        return proc

    def stop(self, name: str, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        proc = self.running.pop(name)
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(timeout=10)

    def close(self) -> None:
        for name in list(self.running):
            self.stop(name, signal.SIGKILL, timeout=10)
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
                os.killpg(group, signal.SIGKILL)


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    """Run to completion; fail the test with its output unless it exits 0."""
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    )
    return proc.stdout


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float, why: Callable[[], str] = lambda: ""
) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = probe()
        except (httpx.HTTPError, OSError):
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{why()}")
        time.sleep(0.3)


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without anything of ours, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))}
    env.update(extra)
    return env
