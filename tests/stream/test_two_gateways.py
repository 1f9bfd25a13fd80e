"""One ingest feeding two gateway replicas: bars published with nats-py on real JetStream reach
both `tradeloop serve` processes' online features, so each one's `/v1/signals/<symbol>`
answers from the latest bar, and the two answer alike (the same model on the same bars)."""

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


def _ready(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} never became ready")


def test_one_ingest_feeds_two_gateways_and_both_answer_from_the_latest_bar(
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
    urls, procs = [], []
    try:
        for who in ("g1", "g2"):
            port = free_port()
            urls.append(f"http://127.0.0.1:{port}")
            argv = [TRADELOOP, "serve", "--port", str(port), "--gateway-id", who]
            procs.append(subprocess.Popen(argv, cwd=project, env=env))
        deadline = time.monotonic() + 180
        for url in urls:
            _ready(url, deadline)
        feeds = [a for url in urls for a in ("--gateway", url)]
        procs.append(subprocess.Popen([TRADELOOP, "ingest", *feeds], cwd=project, env=env))
        n = 40
        last = bar("AAA", n)["timestamp"]
        docs = [{"bars": [bar(s, i) for s in SYMBOLS]} for i in range(1, n + 1)]
        signals = asyncio.run(wait_for_signals(names, docs, last))
        assert {s["symbol"] for s in signals if s["timestamp"] == last} == set(SYMBOLS)
        answers = []
        for url in urls:
            got = {}
            for sym in SYMBOLS:
                r = httpx.get(f"{url}/v1/signals/{sym}", timeout=10)
                assert r.status_code == 200, (url, r.text[:300])
                got[sym] = r.json()
                stamp = datetime.fromisoformat(got[sym]["feature_timestamp"])
                assert stamp == datetime.fromisoformat(last), (url, sym, got[sym])
            answers.append(got)
        for sym in SYMBOLS:  # each replica computed its own features from the same bars
            a, b = answers[0][sym], answers[1][sym]
            assert a["prediction"] == pytest.approx(b["prediction"], rel=1e-9), sym
            assert (a["position"], a["version"]) == (b["position"], b["version"]), sym
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=60)
