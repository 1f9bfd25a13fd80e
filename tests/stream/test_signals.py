"""The live path end to end: bars published on NATS reach a real gateway's online features
through `tradeloop ingest`, and each new signal is published on `signals.<pipeline>.<symbol>`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import TRADELOOP, Run
from tests.net import free_port
from tests.stream.helpers import SYMBOLS, add_stream, bar, need, wait_for_signals

pytestmark = pytest.mark.slow


def test_bars_through_nats_reach_the_gateway_and_signals_are_published(
    run: Run, project: Path
) -> None:
    need(4222, "NATS server")
    names = add_stream(project, lateness="30d")
    assert run("train", cwd=project, timeout=600).code == 0
    admin = run(
        "tokens", "create", "--role", "admin", "--user", "t@example.com", "--json", cwd=project
    )
    assert admin.code == 0, admin.err
    assert run("deploy", "1", "--token", admin.json()["token"], cwd=project).code == 0
    env = {k: v for k, v in os.environ.items() if k not in ("TRADELOOP_HOME", "TRADELOOP_DB_URL")}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    procs = [subprocess.Popen([TRADELOOP, "serve", "--port", str(port)], cwd=project, env=env)]
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        procs.append(
            subprocess.Popen([TRADELOOP, "ingest", "--gateway", url], cwd=project, env=env)
        )
        n = 60
        last = bar("AAA", n)["timestamp"]

        docs = [{"bars": [bar(s, i) for s in SYMBOLS]} for i in range(1, n + 1)]
        signals = asyncio.run(wait_for_signals(names, docs, last))
        by_symbol = {s["symbol"]: s for s in signals if s["timestamp"] == last}
        assert set(by_symbol) == set(SYMBOLS), signals[-8:]
        one = by_symbol["AAA"]
        assert one["pipeline"] == "proj" and one["version"] == "1" and one["variant"] == "champion"
        assert one["side"] in ("long", "short", "flat") and isinstance(one["prediction"], float)
        answer = httpx.get(f"{url}/v1/signals/AAA", timeout=10).json()
        assert datetime.fromisoformat(answer["feature_timestamp"]) == datetime.fromisoformat(last)
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
