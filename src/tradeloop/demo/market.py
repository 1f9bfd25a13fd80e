"""The demo's market through a broker (`tradeloop demo --broker nats|redis`).

The history the first model trains on is a Parquet file of the bars before the clock starts;
every later bar is published to the broker, hour by hour, and reaches the loop only through
`tradeloop ingest`'s consumer: checked, persisted to the bar store, fed to the gateway's
`/v1/bars`, its signals published. The trainer, the monitor and the delayed outcomes then read
history plus the persisted live bars, so the loop stands on what ingest wrote.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from tradeloop.errors import RuntimeFailure
from tradeloop.project import Project
from tradeloop.stream.ingest import Ingestor

BROKERS = {"nats": "nats://127.0.0.1:4222", "redis": "redis://127.0.0.1:6379/0"}
HISTORY_FILE = "history.parquet"
CONSUME_TIMEOUT_S = 30.0


def broker_spec(text: str, broker: str, history_file: str = HISTORY_FILE) -> str:
    """The demo spec with its history in `history_file` and a stream on fresh names (two demos
    on one broker never share a stream or a consumer)."""
    if broker not in BROKERS:
        raise RuntimeFailure(f"--broker {broker!r}: choose from {', '.join(sorted(BROKERS))}")
    name = f"demo{uuid.uuid4().hex[:10]}"
    subject = f"{name}.bars.>" if broker == "nats" else f"{name}.bars"
    lines = [
        "  source: parquet",
        f"  path: {history_file}",
        "  columns: {symbol: symbol}",
        "  stream:",
        f"    broker: {broker}",
        f"    url: {BROKERS[broker]}",
        f"    subject: '{subject}'",
        f"    stream: {name}",
        f"    consumer: {name}",
        "    batch: 64",
    ]
    if "  source: simulator\n" not in text:
        raise RuntimeFailure("the demo spec has no 'source: simulator' line to replace")
    return text.replace("  source: simulator\n", "\n".join(lines) + "\n", 1)


def write_history(bars: pl.DataFrame, before: datetime, path: Path) -> None:
    """The market's bars stamped before `before`: what exists when the demo's clock starts."""
    bars.filter(pl.col("timestamp") < before).write_parquet(path)


class BrokerMarket:
    """Publishes each hour's bars to the stream and runs ingest until it has taken them.

    The consumer runs in step with the simulated clock (publish, then consume what was
    published) so the demo stays deterministic; it is the same `Ingestor` `tradeloop ingest`
    runs, feeding the gateway over loopback HTTP.
    """

    def __init__(self, project: Project, gateway_url: str, history: pl.DataFrame) -> None:
        self.project = project
        self.gateway_url = gateway_url
        self.newest = dict(history.group_by("symbol").agg(pl.col("timestamp").max()).iter_rows())
        self.loop = asyncio.new_event_loop()
        self.published = 0
        self.ingestor: Ingestor | None = None
        self._client: Any = None

    def __enter__(self) -> BrokerMarket:
        self.loop.run_until_complete(self._open())
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            self.loop.run_until_complete(self._close())
        finally:
            self.loop.close()

    async def _open(self) -> None:
        import httpx

        from tradeloop.data.barstore import BarStore
        from tradeloop.stream.feed import GatewayFeed
        from tradeloop.stream.service import stream_spec
        from tradeloop.stream.source import stream_source

        spec = stream_spec(self.project)
        source = stream_source(spec, ack_wait=spec.ack_wait)
        await source.open()
        self._client = httpx.AsyncClient(timeout=30)
        self.ingestor = Ingestor(
            source,
            spec,
            BarStore(self.project.live_bars_dir),
            self.project.store,
            self.project.clock,
            pipeline=self.project.spec.name,
            gateways=[GatewayFeed(self.gateway_url, None, self._client)],
            history_newest=self.newest,
        )

    async def _close(self) -> None:
        if self.ingestor is not None:
            await self.ingestor.settle()
            await asyncio.to_thread(self.ingestor.bars.compact)
            await self.ingestor.source.close()
        if self._client is not None:
            await self._client.aclose()

    def bars(self, rows: list[dict[str, Any]]) -> None:
        """One hour of the market: published as one message, then consumed by ingest."""
        self.loop.run_until_complete(self._bars(rows))

    async def _bars(self, rows: list[dict[str, Any]]) -> None:
        assert self.ingestor is not None
        spec = self.ingestor.spec
        subject = spec.subject.replace(">", "hour")
        await self.ingestor.source.publish(subject, orjson.dumps({"bars": rows}))
        self.published += 1
        deadline = self.loop.time() + CONSUME_TIMEOUT_S
        while self.ingestor.stats.messages < self.published:
            if self.loop.time() > deadline:
                raise RuntimeFailure(
                    f"ingest took {self.ingestor.stats.messages} of {self.published} published "
                    f"messages in {CONSUME_TIMEOUT_S:.0f} s"
                )
            await self.ingestor.step(timeout=1.0)
            await self.ingestor.settle_commit()  # written and acked before the clock moves

    def stats(self) -> dict[str, Any]:
        assert self.ingestor is not None
        return {"published_messages": self.published, **self.ingestor.stats.to_dict()}
