"""`controller run --metrics-port`: a controller process without a gateway is scraped too."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.conftest import TRADELOOP, Run
from tests.net import free_port


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


@pytest.mark.slow
def test_controller_run_serves_controller_and_monitor_metrics(project: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))}
    proc = subprocess.Popen(
        [TRADELOOP, "controller", "run", "monitor", "--metrics-port", str(port)],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        got: dict = {}
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                got = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text)
            except httpx.HTTPError:
                got = {}
            key = (
                "tradeloop_controller_runs_total",
                (("controller", "monitor"), ("outcome", "ok")),
            )
            if got.get(key, 0) >= 1:
                break
            time.sleep(0.2)
        assert got.get(key, 0) >= 1, sorted(n for n, _ in got)
        assert got[("tradeloop_controller_leader", (("controller", "monitor"),))] == 1
        evaluated = ("tradeloop_monitor_last_evaluation_timestamp_seconds", (("model", "proj"),))
        assert got[evaluated] > 0
        # every rule of the spec has a state series, 0 while nothing fires
        firing = {dict(labels)["rule"] for n, labels in got if n == "tradeloop_alert_firing"}
        assert {"data_drift", "hit_rate_decay", "slo_latency_p99_ms"} <= firing
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_a_bad_metrics_port_is_refused(run: Run, project: Path) -> None:
    r = run("controller", "run", "monitor", "--metrics-port", "70000", cwd=project)
    assert r.code == 2
    assert "--metrics-port must be 0..65535" in r.err
