"""`tradeloop ingest`: the durable consumer of `data.stream`, one batch at a time.

Each step: fetch a bounded batch (what is there: no waiting for a full one) → decode and check
every bar → feed the gateways and publish signals → queue the batch for the committer, which
writes every queued batch's accepted bars durably as one part (`BarStore.append`, fsynced, in
a thread) and refused ones as dead letters, then acks them, while the next batches are
fetched (a group commit: one fsync per write, however many batches arrived meanwhile). Acking after the write
makes a kill at any instant safe: what was not acked comes again, and is recognised as a duplicate by (symbol, timestamp) rather than written twice. A bad
message never stops the consumer: it becomes a dead letter and is acked like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
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
# Batches fetched and not yet written from which a step waits for the writer (backpressure:
# the unacked window stays within the broker's max_ack_pending, four batches).
MAX_QUEUED_BATCHES = 2
# s: the least time between two commits' starts unless a step waits for one (backpressure,
# idleness, closing). A part costs ~2.4 ms of CPU whatever its size (bench/ingest.py), so a
# trickle of small batches committed one by one took a core's quarter from the consumer and
# held the GIL when the loop needed it; acks come this much later, well within ack_wait.
COMMIT_INTERVAL = 0.05


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
        self._compaction: asyncio.Task[Any] | None = None
        self._commit: asyncio.Task[None] | None = None
        self._queued: list[tuple[list[Delivery], list[Bar], list[tuple[str, Rejected]]]] = []
        self._queued_messages = 0
        self._failed: Exception | None = None  # a commit that failed: nothing goes on after it
        self._hurry = asyncio.Event()  # a step waits for the commit: no COMMIT_INTERVAL pause
        self._last_commit = -COMMIT_INTERVAL

    def judge_batch(
        self, deliveries: list[Delivery]
    ) -> tuple[list[Bar], list[tuple[str, Rejected]]]:
        """Accepted bars and refusals (with their message's id) for one batch; the index learns
        the accepted bars."""
        now = self.clock.now()
        limit = now + self.spec.future_tolerance
        newest, recent = self.index.newest, self.index.recent
        accepted: list[Bar] = []
        refused: list[tuple[str, Rejected]] = []
        for d in deliveries:
            bars, bad = decode(d.data)
            if bad:
                mid = deadletters.message_id(d.data, d.id)
                refused.extend((mid, r) for r in bad)
            for bar in bars:
                ts, sym = bar.timestamp, bar.symbol
                last = newest.get(sym)
                if last is not None and last < ts <= limit:
                    # the common case: after the symbol's newest bar, so neither known nor
                    # late, and not in the future: accepted (judge would say so, slower)
                    accepted.append(bar)
                    recent[sym][ts] = bar
                    newest[sym] = ts
                    continue
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
                    mid = deadletters.message_id(d.data, d.id)
                    refused.append((mid, Rejected(raw, verdict, reason)))
        return accepted, refused

    async def step(self, timeout: float = 1.0) -> int:
        """One batch end to end; returns how many messages it took (0: the stream is idle).

        The batch's write and ack (its commit) happen in the background, batched with any
        others queued meanwhile; one commit at a time, in order, so batch N is acked after
        batch N-1. A step waits for the writer only when `MAX_QUEUED_BATCHES` are queued."""
        deliveries = await self.source.fetch(self.spec.batch, timeout)
        if not deliveries:
            await self.settle_commit()
            self._compact_soon()
            return 0
        accepted, refused = self.judge_batch(deliveries)
        # Gateways and signals need not wait for the fsync: a bar fed and not yet persisted
        # when the process dies is redelivered (never acked), persisted then, and skipped by
        # the gateway, which has it. The ack waits for the write.
        await self._fan_out(accepted)
        self._queued.append((deliveries, accepted, refused))
        self._queued_messages += len(deliveries)
        self._commit_soon()
        if self._queued_messages >= MAX_QUEUED_BATCHES * self.spec.batch:  # backpressure
            await self.settle_commit()
        self.index.prune({b.symbol for b in accepted})
        self._steps += 1
        if self._steps % COMPACT_EVERY == 0:
            self._compact_soon()
        return len(deliveries)

    def _commit_soon(self) -> None:
        """Start the committer unless it runs (it takes what is queued when it loops). A
        commit that failed is raised here and at every later step: its bars are in the index
        but not on disk, so acking anything after it could drop them as duplicates when the
        broker hands them out again; only a new Ingestor (its index from the disk) goes on."""
        if self._failed is not None:
            raise self._failed
        if self._commit is not None and self._commit.done():
            commit, self._commit = self._commit, None
            try:
                commit.result()
            except Exception as exc:
                self._failed = exc
                raise
        if self._commit is None:
            self._commit = asyncio.create_task(self._commit_queued())

    async def _commit_queued(self) -> None:
        """Group commit: every batch queued since the last write goes into one part (one
        fsync, in a thread, so the loop fetches and signals meanwhile), then is acked in
        order; repeated until nothing is queued. Starts at least `COMMIT_INTERVAL` apart
        unless hurried."""
        loop = asyncio.get_running_loop()
        while self._queued:
            pause = self._last_commit + COMMIT_INTERVAL - loop.time()
            if pause > 0 and not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), pause)
            self._hurry.clear()
            self._last_commit = loop.time()
            taken, self._queued, self._queued_messages = self._queued, [], 0
            accepted = [b for _, bars, _ in taken for b in bars]
            refused = [r for _, _, rs in taken for r in rs]
            await asyncio.to_thread(self._persist, accepted, refused)
            deliveries = [d for ds, _, _ in taken for d in ds]
            await self.source.ack(deliveries)
            self.stats.messages += len(deliveries)
            self.stats.accepted += len(accepted)
            self.stats.refused.update(r.code for _, r in refused)

    async def settle_commit(self) -> None:
        """Wait until every fetched batch is written and acked (raises if a write failed)."""
        if self._failed is not None:
            raise self._failed
        while self._commit is not None:
            self._hurry.set()
            commit = self._commit
            try:
                await commit
            except Exception as exc:
                self._failed = exc
                raise
            finally:
                if self._commit is commit:
                    self._commit = None
            if self._queued:  # queued while the last write finished
                self._commit_soon()

    def _compact_soon(self) -> None:
        """Compaction in a thread beside the consumer, one at a time: it merges only the parts
        that exist when it starts, so appends go on meanwhile, and a step never waits for it."""
        if self._compaction is None or self._compaction.done():
            if self._compaction is not None:
                self._report(self._compaction)
            self._compaction = asyncio.create_task(asyncio.to_thread(self.bars.compact))

    @staticmethod
    def _report(task: asyncio.Task[Any]) -> None:
        exc = task.exception()
        if exc is not None:  # the parts stay; the next compaction merges them
            log.warning("bar store compaction failed: %s", exc)

    async def settle(self) -> None:
        """Wait for the last commit and a compaction under way (before closing)."""
        await self.settle_commit()
        if self._compaction is not None:
            await asyncio.wait([self._compaction])
            self._report(self._compaction)
            self._compaction = None

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
        try:
            idle = 0
            while not stop.is_set():
                took = await self.step(timeout=poll)
                idle = idle + 1 if took == 0 else 0
                # idle twice in a row: the empty step settled the commits, so acks that were
                # pending (and could hold back deliveries) are out before the second look
                if idle >= 2 and until_idle:
                    break
        finally:
            await self.settle()
        return self.stats
