from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """Run the real console script, in `cwd` (default: the test's tmp folder)."""

    def _run(
        *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
    ) -> Result:
        e = {
            k: v
            for k, v in os.environ.items()
            if k not in ("TRADELOOP_HOME", "TRADELOOP_DB_URL", "MLFLOW_TRACKING_URI")
        }
        e.update(env or {})
        proc = subprocess.run(
            [TRADELOOP, *args],
            cwd=cwd or tmp_path,
            env=e,
            text=True,
            capture_output=True,
            timeout=timeout,
        )
        return Result(proc)

    return _run


@pytest.fixture
def project(run: Run, tmp_path: Path) -> Path:
    r = run("init", "proj")
    assert r.code == 0, r.err
    return tmp_path / "proj"
