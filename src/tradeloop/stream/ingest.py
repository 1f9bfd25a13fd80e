"""`tradeloop ingest`: the durable consumer of `data.stream`, one batch at a time.

Each step: fetch a bounded batch → decode and check every bar → write accepted bars durably
(`BarStore.append`, fsynced) and refused ones as dead letters → ack the batch → feed gateways
and publish signals. Acking last makes a kill at any instant safe: what was not acked comes
again, and is recognised as a duplicate by (symbol, timestamp) rather than written twice. A bad
message never stops the consumer: it becomes a dead letter and is acked like any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from tradeloop.clock import Clock
from tradeloop.data.bar_rules import Bar
from tradeloop.data.barstore import BarStore, frame_bars
from tradeloop.spec import StreamSpec
from tradeloop.store import Store
from tradeloop.stream import deadletters
from tradeloop.stream.checks import SeriesIndex, judge
from tradeloop.stream.feed import BarSink, SignalPublisher
from tradeloop.stream.messages import Rejected, decode
from tradeloop.stream.source import Delivery, StreamSource

log = logging.getLogger(__name__)

COMPACT_EVERY = 200  # batches; compaction also runs whenever the stream goes idle


@dataclass
class IngestStats:
    messages: int = 0
    accepted: int = 0
    duplicates: int = 0
    signals: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "signals": self.signals,
            "dead_letters": dict(self.refused),
        }


class Ingestor:
    def __init__(
        self,
        source: StreamSource,
        spec: StreamSpec,
        bars: BarStore,
        store: Store,
        clock: Clock,
        *,
        pipeline: str,
        gateways: Sequence[BarSink] | None = None,
        history_newest: Mapping[str, datetime] | None = None,
    ) -> None:
        self.source, self.spec, self.bars, self.store, self.clock = source, spec, bars, store, clock
        self.pipeline = pipeline
        self.gateways = list(gateways or [])
        self.signals = (
            SignalPublisher(spec.signals_subject, pipeline) if spec.signals_subject else None
        )
        self.stats = IngestStats()
        self.index = SeriesIndex.of(frame_bars(bars.read()), spec.lateness)
        for symbol, ts in (history_newest or {}).items():  # lateness counts from the history too
            if ts > self.index.newest.get(symbol, ts - timedelta(1)):
                self.index.newest[symbol] = ts
        self._steps = 0

    def judge_batch(
        self, deliveries: list[Delivery]
    ) -> tuple[list[Bar], list[tuple[str, Rejected]]]:
        """Accepted bars and refusals (with their message's id) for one batch; the index learns
        the accepted bars."""
        now = self.clock.now()
        accepted: list[Bar] = []
        refused: list[tuple[str, Rejected]] = []
        for d in deliveries:
            mid = deadletters.message_id(d.data, d.id)
            bars, bad = decode(d.data)
            refused.extend((mid, r) for r in bad)
            for bar in bars:
                verdict, reason = judge(
                    bar, self.index, now, self.spec.future_tolerance, self.bars.lookup
                )
                if verdict == "accept":
                    accepted.append(bar)
                    self.index.add(bar)
                elif verdict == "duplicate":
                    self.stats.duplicates += 1
                else:
                    raw = orjson.dumps(bar.to_json()).decode()
                    refused.append((mid, Rejected(raw, verdict, reason)))
        return accepted, refused

    async def step(self, timeout: float = 1.0) -> int:
        """One batch end to end; returns how many messages it took (0: the stream is idle)."""
        deliveries = await self.source.fetch(self.spec.batch, timeout)
        if not deliveries:
            await asyncio.to_thread(self.bars.compact)
            return 0
        accepted, refused = self.judge_batch(deliveries)
        await asyncio.to_thread(self._persist, accepted, refused)
        await self.source.ack(deliveries)
        self.stats.messages += len(deliveries)
        self.stats.accepted += len(accepted)
        self.stats.refused.update(r.code for _, r in refused)
        self.index.prune()
        await self._fan_out(accepted)
        self._steps += 1
        if self._steps % COMPACT_EVERY == 0:
            await asyncio.to_thread(self.bars.compact)
        return len(deliveries)

    def _persist(self, accepted: list[Bar], refused: list[tuple[str, Rejected]]) -> None:
        deadletters.record(self.store, self.spec.consumer, refused)
        self.bars.append(accepted)

    async def _fan_out(self, accepted: list[Bar]) -> None:
        if not accepted or not self.gateways:
            return
        fed = [await g.feed(accepted) for g in self.gateways]
        if self.signals is None or not fed[0]:
            return
        for symbol in sorted({b.symbol for b in accepted}):
            sig = await self.gateways[0].signal(symbol)
            if sig is not None:
                await self.source.notify(
                    self.signals.subject(symbol), self.signals.payload(self.pipeline, sig)
                )
                self.stats.signals += 1

    async def run(
        self, stop: asyncio.Event | None = None, *, until_idle: bool = False, poll: float = 1.0
    ) -> IngestStats:
        """Consume until `stop` is set (or, with `until_idle`, until a fetch finds nothing)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            took = await self.step(timeout=poll)
            if took == 0 and until_idle:
                break
        return self.stats
