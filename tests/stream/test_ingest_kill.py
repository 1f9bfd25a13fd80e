"""SIGKILL `tradeloop ingest` again and again mid-stream: every published bar is persisted
exactly once (the issue's check: persisted count == unique bars published)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.cli.conftest import TRADELOOP, Run
from tests.stream.helpers import SYMBOLS, add_stream, bar, need, publish_nats
from tradeloop.data.barstore import BarStore

pytestmark = pytest.mark.slow


def test_kills_mid_stream_lose_and_duplicate_nothing(run: Run, project: Path) -> None:
    need(4222, "NATS server")
    names = add_stream(project, lateness="400d", batch=20)
    messages = [{"bars": [bar(s, i) for s in SYMBOLS]} for i in range(1, 601)]
    resent = random.Random(5).sample(messages, 60)  # a producer's own retries

    def produce() -> None:
        for k in range(0, len(messages), 50):
            publish_nats(names, messages[k : k + 50])
            time.sleep(0.2)
        publish_nats(names, resent)

    producer = threading.Thread(target=produce)
    producer.start()
    env = {k: v for k, v in os.environ.items() if k not in ("TRADELOOP_HOME", "TRADELOOP_DB_URL")}
    parts = project / ".tradeloop" / "bars"
    rng = random.Random(11)
    kills = 0
    for _ in range(6):
        proc = subprocess.Popen([TRADELOOP, "ingest"], cwd=project, env=env)
        seen = BarStore(parts).stamp()
        deadline = time.monotonic() + 60
        while BarStore(parts).stamp() == seen and time.monotonic() < deadline:
            time.sleep(0.05)  # it is writing: now kill it somewhere in the next batches
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
    producer.join(timeout=120)
    assert kills >= 3
    for _ in range(2):  # what the killed consumers held comes back after ack_wait (1 s)
        r = run("ingest", "--until-idle", "--json", cwd=project, timeout=300)
        assert r.code == 0, r.err
        time.sleep(1.5)
    persisted = BarStore(parts).read()
    assert persisted.height == 600 * len(SYMBOLS)
    assert persisted.unique(["symbol", "timestamp"]).height == persisted.height
    raw = [pl for pl in parts.rglob("*.parquet")]
    assert raw  # and `data check` agrees with the store
    check = run("data", "check", "--json", cwd=project).json()
    assert check["ok"], check
