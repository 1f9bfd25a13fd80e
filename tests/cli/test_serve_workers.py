"""`tradeloop serve --workers N` from the real console script (a fresh project, nothing
deployed: the gateway still starts; `tests/serving/test_workers.py` covers the behaviour)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import TRADELOOP, Run
from tests.net import free_port


@pytest.mark.slow  # two gateway processes start: ~20 s on a busy 2-core machine
def test_serve_with_two_workers_starts_both_and_stops_cleanly(run: Run, project: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))}
    log = project / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [TRADELOOP, "serve", "--workers", "2", "--port", str(port)],
            cwd=project,
            env={**env, "TRADELOOP_GATEWAY_ID": "gw"},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 90
        while log.read_text().count("is serving") < 2:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert "with 2 workers" in log.read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'tradeloop_requests_total{model="proj",route="/healthz"' in metrics
        status = run("status", "--json", cwd=project).json()
        gateways = {g["gateway"] for g in status["actual"]["gateways"]}
        assert gateways == {"gw-w0", "gw-w1"}  # each worker reports under its own name
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_serve_refuses_zero_workers(run: Run, project: Path) -> None:
    r = run("serve", "--workers", "0", cwd=project)
    assert r.code == 2
    assert "--workers" in r.err
