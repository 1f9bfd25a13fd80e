"""The README's main job, end to end: `tradeloop demo --json` tells the whole story, in order,
and what it leaves behind agrees with itself (git, registry, gateway state, audit chain)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))


@pytest.mark.slow
def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))}
    proc = subprocess.run(
        [TRADELOOP, "demo", "--json", "--workdir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    assert set(doc) >= {"events", "state"} and doc["ok"], doc.get("problems")
    events = doc["events"]
    assert all(set(e) >= {"t", "controller", "action", "version", "reason"} for e in events)

    def at(action: str, version: str | None = None) -> int:
        return next(
            i
            for i, e in enumerate(events)
            if e["action"] == action and (version is None or e["version"] == version)
        )

    bad = next(e["version"] for e in events if e["action"] == "inject_bad")
    assert at("promote", "1") < at("alert_firing") < at("registered", "2") < at("promote", "2")
    assert at("promote", "2") < at("inject_bad") < at("rollback", bad)
    assert "drift" in events[at("registered", "2")]["reason"]
    times = [e["t"] for e in events]
    assert times == sorted(times)  # one simulated timeline

    state = doc["state"]
    assert state["champion"] == "2" and state["request_errors"] == 0
    assert state["serving"] == [
        {"model_name": "demo", "variant": "champion", "version": "2", "mode": "live", "weight": 100}
    ]
    assert state["git_pin"]["version"] == "2" and bad in state["git_pin"]["rejected"]
    assert state["audit"]["ok"]

    project = doc["project"]
    status = json.loads(
        subprocess.run(
            [TRADELOOP, "status", "--json"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    )
    assert status["in_sync"] and status["desired"]["pinned"] == "2"
    assert status["actual"]["champion"] == "2" and status["rollout"]["phase"] == "rolled_back"
    # the analysis that decided the rollback stays on record after the rollback step
    assert status["rollout"]["last_analysis"]["decision"] == "rollback"
    assert [e["phase"] for e in events if e["action"] == "rollout_start"][1:] == ["shadow"] * 2
    verify = subprocess.run(
        [TRADELOOP, "audit", "verify"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stderr
