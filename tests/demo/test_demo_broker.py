"""`tradeloop demo --broker nats|redis`: the market reaches the loop only through the real
broker and ingest; a short run persists every published bar and publishes signals."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.stream.helpers import need

TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))
HOURS = 36
SYMBOLS = 12


class SignalListener:
    """A trading client subscribed to `signals.demo.>` for the length of the run."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        import nats

        nc = await nats.connect("nats://127.0.0.1:4222")

        async def on(msg: Any) -> None:
            self.received.append(json.loads(msg.data))

        await nc.subscribe("signals.demo.>", cb=on)
        await nc.flush()
        self.ready.set()
        while not self.stop.is_set():
            await asyncio.sleep(0.05)
        await nc.drain()


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["nats", "redis"])
def test_demo_market_through_broker(tmp_path: Path, broker: str) -> None:
    need(4222 if broker == "nats" else 6379, broker)
    listener = SignalListener()
    listener.thread.start()
    assert listener.ready.wait(10)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))}
    try:
        proc = subprocess.run(
            [
                TRADELOOP,
                "demo",
                "--json",
                "--workdir",
                str(tmp_path),
                "--broker",
                broker,
                "--hours",
                str(HOURS),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        listener.stop.set()
        listener.thread.join(10)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    ingest = doc["state"]["ingest"]
    assert ingest["published_messages"] == HOURS
    assert ingest["accepted"] == HOURS * SYMBOLS and ingest["dead_letters"] == {}
    assert doc["state"]["request_errors"] == 0
    # ingest persisted every live bar, once: the bar store holds exactly the published hours
    from tradeloop.data.barstore import BarStore
    from tradeloop.project import Project

    project = Project.load(Path(doc["project"]) / "tradeloop.yaml")
    live = BarStore(project.live_bars_dir).read()
    assert live.height == HOURS * SYMBOLS
    assert live.unique(["symbol", "timestamp"]).height == live.height
    history = pl.read_parquet(Path(doc["project"]) / "history.parquet")
    assert live["timestamp"].min() > history["timestamp"].max()  # live bars came after history
    # a model was trained on the history and served; its signals reached a NATS subscriber
    assert any(e["action"] == "registered" for e in doc["events"])
    assert ingest["signals"] > 0
    if broker != "nats":  # Redis signals are stream entries; the NATS client below subscribes
        return
    assert len(listener.received) >= ingest["signals"] // 2
    got = listener.received[-1]
    assert got["pipeline"] == "demo" and got["version"] and got["position"] is not None
