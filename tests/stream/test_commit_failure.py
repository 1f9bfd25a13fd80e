"""A write that fails stops the ingestor for good: nothing after it is acked (its bars are in the
index but not on disk, so a redelivery would look like a duplicate), and a fresh ingestor, its
index read from the disk, persists every bar (real NATS JetStream)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.stream.helpers import SYMBOLS, add_stream, bar, need
from tradeloop.data.barstore import BarStore
from tradeloop.project import Project
from tradeloop.stream.ingest import Ingestor
from tradeloop.stream.service import stream_spec
from tradeloop.stream.source import stream_source


def _ingestor(project: Project) -> Ingestor:
    spec = stream_spec(project)
    return Ingestor(
        stream_source(spec, ack_wait=timedelta(seconds=1)),
        spec,
        BarStore(project.live_bars_dir),
        project.store,
        project.clock,
        pipeline=project.spec.name,
    )


async def _fail_then_restart(project: Project, payloads: list[bytes]) -> tuple[Any, Any, int]:
    first = _ingestor(project)
    await first.source.open()
    for p in payloads:
        await first.source.publish(first.spec.subject.replace(">", "x"), p)
    real_append = first.bars.append

    def full_disk(bars: Any) -> Any:
        first.bars.append = real_append  # type: ignore[method-assign]  # only the first write
        raise OSError("No space left on device")

    first.bars.append = full_disk  # type: ignore[method-assign]
    raised = 0
    for _ in range(4):  # the failure, and every step after it, raise
        try:
            await first.step(timeout=2.0)
        except OSError:
            raised += 1
    await first.source.close()
    time.sleep(1.5)  # past ack_wait: the broker hands the unacked messages out again
    second = _ingestor(project)
    await second.source.open()
    try:
        await second.run(until_idle=True, poll=2.0)
    finally:
        await second.source.close()
    return first.stats, second.stats, raised


def test_after_a_failed_write_nothing_is_acked_and_a_restart_persists_every_bar(
    project: Path,
) -> None:
    need(4222, "NATS server")
    add_stream(project, lateness="30d")
    loaded = Project.load(project / "tradeloop.yaml")
    payloads = [json.dumps({"bars": [bar(s, i) for s in SYMBOLS]}).encode() for i in range(1, 9)]
    first, second, raised = asyncio.run(_fail_then_restart(loaded, payloads))
    assert raised >= 3  # not only the step that saw the failure
    assert first.messages == 0 and first.accepted == 0  # acked nothing
    # every message again (at least once: one may come twice if its ack is slow), every bar once
    assert second.messages >= len(payloads) and second.accepted == len(payloads) * len(SYMBOLS)
    assert BarStore(loaded.live_bars_dir).read().height == len(payloads) * len(SYMBOLS)
