"""`tradeloop train` SIGKILLed at many moments of a fresh project's first start, then run
again: it succeeds every time (issue 16, item 1: no half-made store bricks the project)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))
KILLS = 8  # each is followed by a full training: about 30 s apiece in CI


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))}


def _stores_ready(root: Path) -> bool:
    state = root / ".tradeloop"
    return (state / "mlflow.db").exists() and (state / "tradeloop.db").exists()


def _train(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [TRADELOOP, "train", "--json"],
        cwd=root,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 9 fresh trainings; minutes on a loaded 2-core machine
def test_train_killed_during_its_first_start_then_succeeds(
    small_project: Path, tmp_path: Path
) -> None:
    # Calibrate: when do both stores exist on this machine? Kill across that whole window.
    probe = tmp_path / "probe"
    shutil.copytree(small_project, probe)
    t0, proc = time.monotonic(), _train(probe)
    while not _stores_ready(probe) and proc.poll() is None:
        time.sleep(0.01)
    ready = time.monotonic() - t0
    proc.kill()
    proc.communicate()
    window = max(1.0, ready + 0.3)
    moments = [0.05 + i * (window - 0.05) / (KILLS - 1) for i in range(KILLS)]

    mid_build = 0  # kills that caught a schema half-built (at its temporary name)
    for i, moment in enumerate(moments):
        root = tmp_path / f"p{i}"
        shutil.copytree(small_project, root)
        proc = _train(root)
        time.sleep(moment)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        mid_build += bool(list((root / ".tradeloop").glob("*.init-*")))
        again = subprocess.run(
            [TRADELOOP, "train", "--json"],
            cwd=root,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.returncode == 0, f"killed at {moment:.2f}s: {again.stderr[-2000:]}"
        assert json.loads(again.stdout)["version"] == "1", f"killed at {moment:.2f}s"
        assert list((root / ".tradeloop").glob("*.init-*")) == []
    assert mid_build >= 1, f"no kill landed while a store was being built ({moments=})"
