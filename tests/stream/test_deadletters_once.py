"""Dead letters exactly once: a bad message redelivered after the process died between the
durable write and the ack is refused again, but recorded once (the real brokers redeliver)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.stream.helpers import add_stream, bar, need
from tradeloop.data.barstore import BarStore
from tradeloop.project import Project
from tradeloop.stream import deadletters
from tradeloop.stream.ingest import Ingestor
from tradeloop.stream.service import stream_spec
from tradeloop.stream.source import stream_source


class Died(Exception):
    """The ingest process dying after its durable write and before its ack."""


def _messages() -> list[bytes]:
    nan_bar = {**bar("AAA", 3), "close": float("nan")}
    inverted = {**bar("BBB", 3), "high": 90.0, "low": 110.0}
    return [
        b"not json at all",
        json.dumps([bar("AAA", 1), bar("AAA", 2)]).encode(),  # good
        json.dumps({"bars": [bar("CCC", 1), inverted, {"symbol": "DDD"}]}).encode(),
        json.dumps(nan_bar).encode(),  # Python writes NaN as a bare token
        b"not json at all",  # a second message with the same text is a second dead letter
    ]


def _ingestor(project: Project) -> Ingestor:
    spec = stream_spec(project)
    source = stream_source(spec, ack_wait=timedelta(seconds=1))
    return Ingestor(
        source,
        spec,
        BarStore(project.live_bars_dir),
        project.store,
        project.clock,
        pipeline=project.spec.name,
    )


async def _crash_then_restart(project: Project, payloads: list[bytes]) -> tuple[Any, Any]:
    first = _ingestor(project)
    await first.source.open()
    for p in payloads:
        await first.source.publish(first.spec.subject.replace(">", "x"), p)

    async def die(_deliveries: Any) -> None:
        raise Died

    first.source.ack = die  # type: ignore[method-assign]
    with pytest.raises(Died):
        while first.stats.messages < len(payloads):
            await first.step(timeout=2.0)
    await first.source.close()
    time.sleep(1.5)  # past ack_wait: the broker hands the unacked messages out again
    second = _ingestor(project)
    await second.source.open()
    try:
        await second.run(until_idle=True, poll=2.0)
    finally:
        await second.source.close()
    return first.stats, second.stats


@pytest.mark.parametrize("broker", ["nats", "redis"])
def test_redelivered_bad_messages_are_dead_lettered_once(project: Path, broker: str) -> None:
    need(4222 if broker == "nats" else 6379, broker)
    names = add_stream(project, broker=broker, lateness="30d")
    loaded = Project.load(project / "tradeloop.yaml")
    payloads = _messages()
    _, again = asyncio.run(_crash_then_restart(loaded, payloads))
    # the second process really was handed every message again, and refused the bad ones again
    # (at least once: under load its 1 s ack wait can pass and one come a third time, which
    # the table below must still hold once)
    assert again.messages >= len(payloads)
    assert sum(again.refused.values()) >= 5
    # the good bars: written by the first process before its ack failed (duplicates now), or
    # queued behind that failed write and so written only now; each one either way
    assert again.duplicates + again.accepted == 3
    rows = deadletters.listed(loaded.store, names["name"])
    assert sorted(r.code for r in rows) == sorted(
        ["not_json", "not_json", "fields", "ohlc", "not_finite"]
    ), [(r.code, r.reason) for r in rows]
    assert len({(r.raw, r.code) for r in rows}) == 4  # the two non-JSON messages are two rows
    assert BarStore(loaded.live_bars_dir).read().height == 3  # the good bars, once each
