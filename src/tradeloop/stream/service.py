"""Ingest as a process role: `tradeloop ingest` runs it in the main thread, `tradeloop up`
beside the gateway in a thread of its own (feeding that gateway over loopback, the same path
a separate ingest process takes)."""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
from typing import Any

import polars as pl

from tradeloop.data.barstore import BarStore
from tradeloop.data.source import raw_bars
from tradeloop.errors import BadInput
from tradeloop.project import Project
from tradeloop.spec import StreamSpec
from tradeloop.stream.feed import GatewayFeed
from tradeloop.stream.ingest import Ingestor
from tradeloop.stream.source import stream_source


def stream_spec(project: Project) -> StreamSpec:
    s = project.spec.data.stream
    if s is None:
        raise BadInput(
            f"{project.spec_path}: data.stream is not set; add a stream section to ingest "
            "(see docs/streaming.md)"
        )
    return s


async def consume(
    project: Project,
    gateways: list[str],
    token: str | None,
    *,
    until_idle: bool = False,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Run the consumer until `stop` (or SIGINT/SIGTERM in the main thread, or idleness)."""
    import httpx

    spec = stream_spec(project)
    history = raw_bars(project.spec.data, project.root)
    newest = dict(history.group_by("symbol").agg(pl.col("timestamp").max()).iter_rows())
    source = stream_source(spec, ack_wait=spec.ack_wait)
    await source.open()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
    if stop is not None:
        loop.run_in_executor(None, lambda: (stop.wait(), loop.call_soon_threadsafe(done.set)))
    async with httpx.AsyncClient(timeout=10) as client:
        ingestor = Ingestor(
            source,
            spec,
            BarStore(project.live_bars_dir),
            project.store,
            project.clock,
            pipeline=project.spec.name,
            gateways=[GatewayFeed(u, token, client) for u in gateways],
            history_newest=newest,
        )
        if threading.current_thread() is threading.main_thread():
            # the process's own: what startup built (the history's index) is never garbage,
            # so the collector stops walking it (a full collection over it was a latency spike)
            gc.collect()
            gc.freeze()
        try:
            stats = await ingestor.run(done, until_idle=until_idle)
        finally:
            await asyncio.to_thread(ingestor.bars.compact)
            await source.close()
    return stats.to_dict()


def start_in_thread(
    project: Project, gateway: str, token: str | None, stop: threading.Event
) -> threading.Thread:
    """`tradeloop up`'s ingest: a daemon thread with its own event loop."""
    thread = threading.Thread(
        target=lambda: asyncio.run(consume(project, [gateway], token, stop=stop)),
        name="ingest",
        daemon=True,
    )
    thread.start()
    return thread
