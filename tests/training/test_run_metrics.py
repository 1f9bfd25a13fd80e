"""`tradeloop train` and `tradeloop job run` with `--metrics-port`: a real training's progress
scraped over HTTP while it runs, and its outcome once it ends."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.training.conftest import shrink

from tradeloop.templates import init_project
from tradeloop.training.run_metrics import PHASES, phase_of

TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))
TRIALS = "    trials: 0                   # > 0 runs an Optuna search inside the training folds"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    try:
        text = httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return None
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name.startswith("tradeloop_training")
    }


def test_every_pipeline_step_has_a_bounded_phase() -> None:
    steps = ["data", "features", "tuning", "fold 1/3", "fold 3/3", "backtest", "selection"]
    steps += ["final model", "artifacts", "register"]
    assert {phase_of(s) for s in steps} == set(PHASES)
    with pytest.raises(ValueError, match="no metrics phase"):
        phase_of("something new")


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", [["train", "--json"], ["job", "run", "--trigger", "manual:m", "--reason", "test"]]
)
def test_training_serves_its_phase_folds_trials_and_last_success(
    tmp_path: Path, command: list[str]
) -> None:
    spec = init_project(tmp_path / "proj", "small")
    shrink(spec, **{TRIALS: "    trials: 3"})
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))}
    started = time.time()
    proc = subprocess.Popen(
        [TRADELOOP, *command, "--metrics-port", str(port), "--metrics-linger", "30"],
        cwd=spec.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: set[str] = set()  # phases observed at 1 while it ran
    final = None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            got = _scrape(url)
            if got is not None:
                seen |= {
                    dict(lbl)["phase"]
                    for (name, lbl), v in got.items()
                    if name == "tradeloop_training_phase" and v == 1
                }
                if "succeeded" in seen or "failed" in seen:
                    final = got
                    break
            time.sleep(0.05)
        assert final is not None, proc.stderr.read() if proc.stderr else "no scrape"
    finally:
        proc.terminate()
        proc.wait(30)
    model = ("model", "small")

    def value(name: str, *labels: tuple[str, str]) -> float:
        return final[(name, tuple(sorted((model, *labels))))]

    assert value("tradeloop_training_phase", ("phase", "succeeded")) == 1
    assert sum(value("tradeloop_training_phase", ("phase", p)) for p in PHASES) == 0
    assert seen & set(PHASES), seen  # scraped while running, not only at the end
    assert value("tradeloop_training_folds") == 2 == value("tradeloop_training_folds_done")
    assert value("tradeloop_training_trials_done") == 3
    for p in ("data", "features", "tuning", "folds", "backtest", "export", "register"):
        assert value("tradeloop_training_phase_duration_seconds", ("phase", p)) >= 0
    folds_s = value("tradeloop_training_phase_duration_seconds", ("phase", "folds"))
    assert 0 < folds_s < time.time() - started
    assert started <= value("tradeloop_training_last_success_timestamp_seconds") <= time.time()
