"""Live ingest speed: broker → checked → durably persisted → online features updated.

    .venv/bin/python bench/ingest.py                  # NATS JetStream at 127.0.0.1:4222
    .venv/bin/python bench/ingest.py --broker redis   # Redis Streams at 127.0.0.1:6379
    .venv/bin/python bench/ingest.py --bars 200000 --per-message 100

Rows printed side by side:
- `raw broker`: the broker's own publish-then-consume rate from Python on this machine (pull
  fetch + ack, no work per message): the ceiling for anything written in Python;
- `ingest end to end`: `stream.ingest.Ingestor` with its real checks, the fsynced Parquet bar
  store and the dead-letter table (SQLite), feeding each accepted bar to online features
  (`features.OnlineFeatures`, the gateway's code) in process;
- `bar-to-signal latency` at a paced 1,000 bars/s, one bar per message: from publish to a
  subscriber receiving the published signal, with the publisher and the subscriber in a
  process of their own (`_market`), as a market feed and a trading client would be; beside
  it the broker's own publish-to-subscriber latency on the same bars. The signal here is the online feature row (no
  model scoring: the gateway's single-row scoring p99 is bench/serving.py's figure).
Targets (issue 14): ≥ 50,000 bars/s sustained; p99 ≤ 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tradeloop.clock import SimulatedClock
from tradeloop.data.bar_rules import Bar
from tradeloop.data.barstore import BarStore
from tradeloop.features import OnlineFeatures
from tradeloop.spec import StreamSpec, default_features
from tradeloop.store import Store
from tradeloop.stream.feed import BarSink
from tradeloop.stream.ingest import Ingestor
from tradeloop.stream.messages import encode
from tradeloop.stream.source import StreamSource, stream_source

T0 = datetime(2024, 1, 1, tzinfo=UTC)


class OnlineSink:
    """The gateway's online-feature update, in process (what `POST /v1/bars` runs)."""

    def __init__(self) -> None:
        self.online = OnlineFeatures(default_features())
        self.rows: dict[str, tuple[datetime, Any]] = {}

    async def feed(self, bars: list[Bar]) -> bool:
        groups: dict[datetime, dict[str, dict[str, float]]] = defaultdict(dict)
        for b in bars:
            groups[b.timestamp][b.symbol] = {
                "open": b.open,
                "high": b.high,
                "low": b.low,
                "close": b.close,
                "volume": b.volume,
            }
        self.rows.update(self.online.update_latest(groups))
        return True

    async def signal(self, symbol: str) -> dict[str, Any] | None:
        got = self.rows.get(symbol)
        if got is None:
            return None
        ts, row = got
        row = self.online.fresh(symbol, ts, row)
        return {"symbol": symbol, "features": row, "feature_timestamp": ts.isoformat()}


def _spec(broker: str, name: str, batch: int) -> StreamSpec:
    if broker == "nats":
        return StreamSpec(
            subject=f"{name}.>",
            stream=name,
            consumer=name,
            batch=batch,
            lateness=timedelta(days=3650),
            signals_subject=f"sig{name}",
        )
    return StreamSpec(
        broker="redis",
        url="redis://127.0.0.1:6379/0",
        subject=name,
        stream=name,
        consumer=name,
        batch=batch,
        lateness=timedelta(days=3650),
        signals_subject=f"sig{name}",
    )


def _bars(n: int, symbols: int) -> list[Bar]:
    out = []
    for i in range(n // symbols):
        ts = T0 + timedelta(minutes=i)
        for s in range(symbols):
            c = 100.0 + (i % 13) * 0.1
            out.append(Bar(f"S{s:03d}", ts, c, c + 0.5, c - 0.5, c, 1000.0))
    return out


async def _drop(name: str) -> None:
    """Delete the bench's JetStream stream (or Redis key): runs leave nothing on the broker."""
    if name.startswith("redis:"):
        import redis.asyncio as aioredis

        r = aioredis.from_url("redis://127.0.0.1:6379/0")
        await r.delete(name.removeprefix("redis:"))
        await r.aclose()
        return
    import nats

    nc = await nats.connect("nats://127.0.0.1:4222")
    try:
        await nc.jetstream().delete_stream(name)
    finally:
        await nc.close()


def _name(broker: str, name: str) -> str:
    return f"redis:{name}" if broker == "redis" else name


async def _load(src: StreamSource, subject: str, payloads: list[bytes]) -> float:
    t = time.perf_counter()
    for p in payloads:
        await src.publish(subject, p)
    return time.perf_counter() - t


async def raw_rate(broker: str, messages: int) -> tuple[float, float]:
    name = f"b{uuid.uuid4().hex[:8]}"
    src = stream_source(_spec(broker, name, 500))
    await src.open()
    payloads = [b'{"x": %d}' % i for i in range(messages)]
    pub = await _load(src, f"{name}.x", payloads)
    t, got = time.perf_counter(), 0
    while got < messages:
        batch = await src.fetch(500, 1.0)
        await src.ack(batch)
        got += len(batch)
    cons = time.perf_counter() - t
    await src.close()
    await _drop(_name(broker, name))
    return messages / pub, messages / cons


async def end_to_end(
    broker: str, bars: int, per_message: int, symbols: int, root: Path, features: bool = True
) -> tuple[float, int]:
    """Bars/s through the whole batch step; `features=False`: to the store only."""
    name = f"b{uuid.uuid4().hex[:8]}"
    spec = _spec(broker, name, 200)
    src = stream_source(spec)
    await src.open()
    data = _bars(bars, symbols)
    payloads = [encode(data[i : i + per_message]) for i in range(0, len(data), per_message)]
    await _load(src, f"{name}.x", payloads)
    store = Store.open(
        f"sqlite:///{root / 'bench.db'}", SimulatedClock(datetime(2030, 1, 1, tzinfo=UTC))
    )
    ing = Ingestor(
        src,
        spec,
        BarStore(root / name),
        store,
        store.clock,
        pipeline="bench",
        gateways=[OnlineSink()] if features else [],
    )
    ing.signals = None  # throughput row: no signal publishing
    t, taken = time.perf_counter(), 0
    while taken < len(payloads):
        took = await ing.step(timeout=1.0)
        if took == 0:
            break
        taken += took
    await ing.settle_commit()  # the last batch written and acked
    dt = time.perf_counter() - t
    await src.close()
    await _drop(_name(broker, name))
    return ing.stats.accepted / dt, ing.stats.accepted


def _market(name: str, rate: int, seconds: float, out: str) -> None:
    """The market and a trading client, in a process of their own: publishes one bar per
    message to JetStream at a steady `rate`, subscribes to the signals (and, for reference,
    to the bars themselves), and writes both latencies (s) to `out` as JSON."""
    asyncio.run(_market_async(name, rate, seconds, out))


async def _market_async(name: str, rate: int, seconds: float, out: str) -> None:
    import nats

    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()
    sent: dict[tuple[str, str], float] = {}
    raw_sent: dict[bytes, float] = {}
    lat: list[float] = []
    raw: list[float] = []

    async def on_signal(msg: Any) -> None:
        doc = orjson.loads(msg.data)
        t = sent.pop((doc["symbol"], doc["timestamp"]), None)
        if t is not None:
            lat.append(time.perf_counter() - t)

    async def on_bar(msg: Any) -> None:
        t = raw_sent.pop(msg.data, None)
        if t is not None:
            raw.append(time.perf_counter() - t)

    await nc.subscribe(f"sig{name}.bench.>", cb=on_signal)
    await nc.subscribe(f"{name}.x", cb=on_bar)
    await nc.flush()
    n = int(rate * seconds)
    t0 = time.perf_counter()
    for i in range(n):
        symbol = f"L{i % 1000:04d}"
        c = 100.0 + (i % 7)
        b = Bar(symbol, T0 + timedelta(minutes=i // 1000), c, c + 1, c - 1, c, 1.0)
        data = encode([b])
        sent[(symbol, b.timestamp.isoformat())] = raw_sent[data] = time.perf_counter()
        await js.publish(f"{name}.x", data, stream=name)
        delay = t0 + (i + 1) / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    achieved = n / (time.perf_counter() - t0)
    await asyncio.sleep(1.0)
    await nc.close()
    Path(out).write_bytes(
        orjson.dumps({"signal": lat, "raw": raw, "published": n, "rate": achieved})
    )


async def _paced(sink: BarSink, rate: int, seconds: float, root: Path) -> dict[str, Any]:
    """Ingest feeding `sink` in this process, the publisher and the signal subscriber
    (`_market`) in another; the latencies `_market` wrote."""
    name = f"b{uuid.uuid4().hex[:8]}"
    spec = _spec("nats", name, 50)
    src = stream_source(spec)
    await src.open()  # creates the stream before the market publishes
    store = Store.open(
        f"sqlite:///{root / f'{name}.db'}", SimulatedClock(datetime(2030, 1, 1, tzinfo=UTC))
    )
    ing = Ingestor(
        src, spec, BarStore(root / name), store, store.clock, pipeline="bench", gateways=[sink]
    )
    gc.collect()
    gc.freeze()  # as `tradeloop ingest` does before consuming (stream/service.py)
    stop = asyncio.Event()
    runner = asyncio.create_task(ing.run(stop, poll=0.05))
    out = root / f"{name}.json"
    proc = multiprocessing.get_context("spawn").Process(
        target=_market, args=(name, rate, seconds, str(out))
    )
    proc.start()
    await asyncio.to_thread(proc.join)
    stop.set()
    await runner
    await src.close()
    await _drop(name)
    result: dict[str, Any] = orjson.loads(out.read_bytes())
    return result


async def latency(broker: str, rate: int, seconds: float, root: Path) -> dict[str, Any]:
    """Online features updated in process: the feature path alone (NATS only)."""
    if broker != "nats":
        return {}
    return await _paced(OnlineSink(), rate, seconds, root)


def _gateway_project(root: Path) -> tuple[Path, dict[str, str]]:
    """A trained, deployed project (the simulator's, default features) to serve."""
    import os

    from tradeloop.project import Project
    from tradeloop.store import deployments as dep
    from tradeloop.templates import init_project
    from tradeloop.training.pipeline import train

    spec_path = init_project(root / "gwproj", "gwbench")
    project = Project.load(spec_path)
    result = train(project)
    # the market's symbols, not the simulator's four the model was trained on
    universe = ", ".join(f"L{s:04d}" for s in range(1000))
    text = spec_path.read_text().replace(
        "serving: {require_token: false,",
        f"serving: {{symbols: [{universe}], require_token: false,",
    )
    if text == spec_path.read_text():
        raise RuntimeError("the template's serving line changed: set serving.symbols here")
    spec_path.write_text(text)
    if result.version is None:
        raise RuntimeError(f"gates failed: {result.gates['failed']}")
    live = dep.Deployed("gwbench", "champion", result.version, "live", 100)
    dep.apply(project.store, "gwbench", [live], actor="bench", reason="bench")
    return project.root, {**os.environ, "MLFLOW_TRACKING_URI": project.mlflow_uri}


async def _warm(url: str, minutes: int) -> None:
    """`minutes` bars for each of the market's 1,000 symbols before T0, so every feature window
    is full when the paced bars start (the gateway answers 409 while one warms up)."""
    import httpx

    async with httpx.AsyncClient(timeout=60) as client:
        for m in range(minutes, 0, -1):
            ts = (T0 - timedelta(minutes=m)).isoformat()
            bars = [
                {
                    "symbol": f"L{s:04d}",
                    "timestamp": ts,
                    "open": 100.0 + s % 7,
                    "high": 101.0 + s % 7,
                    "low": 99.0 + s % 7,
                    "close": 100.0 + s % 7 + (m % 5) * 0.1,
                    "volume": 1.0 + (m * 7 + s) % 11,
                }
                for s in range(1000)
            ]
            r = await client.post(f"{url}/v1/bars", json={"bars": bars})
            if r.status_code != 200:
                raise RuntimeError(f"warming the gateway: {r.status_code} {r.text[:300]}")


async def latency_gateway(rate: int, seconds: float, root: Path) -> dict[str, Any]:
    """Bar-to-signal as `tradeloop ingest --gateway URL` runs it: a real gateway (`tradeloop
    serve`, its model scoring each signal) fed over HTTP, the publisher and the subscriber in
    a process of their own."""
    import subprocess
    import sys

    import httpx

    from tradeloop.stream.feed import GatewayFeed

    cwd, env = _gateway_project(root)
    sys.path.insert(0, str(Path(__file__).parent))
    from serving import free_port, run_server, stop

    port = free_port()
    exe = Path(sys.executable).with_name("tradeloop")
    proc: subprocess.Popen[bytes] = run_server(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)], env, cwd, port, "/readyz"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await _warm(url, 40)
        async with httpx.AsyncClient(timeout=10) as client:
            return await _paced(GatewayFeed(url, None, client), rate, seconds, root)
    finally:
        stop(proc)


def _pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100)[int(q) - 1] if len(xs) > 2 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", choices=("nats", "redis"), default="nats")
    ap.add_argument("--bars", type=int, default=200_000)
    ap.add_argument("--per-message", type=int, default=100)
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--raw-messages", type=int, default=20_000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--no-gateway", action="store_true", help="skip the row through a real gateway")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        pub, cons = asyncio.run(raw_rate(a.broker, a.raw_messages))
        stored, _ = asyncio.run(
            end_to_end(a.broker, a.bars, a.per_message, a.symbols, root, features=False)
        )
        e2e, n = asyncio.run(end_to_end(a.broker, a.bars, a.per_message, a.symbols, root))
        lat = asyncio.run(latency(a.broker, a.rate, a.seconds, root))
        via: dict[str, Any] = {}
        if a.broker == "nats" and not a.no_gateway:
            via = asyncio.run(latency_gateway(a.rate, a.seconds, root))
    print(f"broker: {a.broker}; {a.bars:,} bars, {a.per_message} per message, {a.symbols} symbols")
    print(f"{'row':<34}{'figure':>18}")
    print(f"{'raw broker publish (msg/s)':<34}{pub:>18,.0f}")
    print(f"{'raw broker consume+ack (msg/s)':<34}{cons:>18,.0f}")
    print(f"{'raw consume in bars/s at this size':<34}{cons * a.per_message:>18,.0f}")
    print(f"{'ingest to the store only (bars/s)':<34}{stored:>18,.0f}")
    print(f"{'ingest end to end (bars/s)':<34}{e2e:>18,.0f}   ({n:,} persisted; target >= 50,000)")
    if lat:
        ms = [x * 1000 for x in lat["signal"]]
        raw_ms = [x * 1000 for x in lat["raw"]]
        where = f"publisher in its own process, {lat['rate']:,.0f} bars/s achieved"
        print(
            f"{'raw broker pub->sub (ms)':<34}"
            f"{f'p50 {_pct(raw_ms, 50):.2f}  p99 {_pct(raw_ms, 99):.2f}':>18}   ({where})"
        )
        print(
            f"{f'bar-to-signal @ {a.rate} bars/s (ms)':<34}"
            f"{f'p50 {_pct(ms, 50):.2f}  p99 {_pct(ms, 99):.2f}':>18}   "
            f"({len(ms):,} of {lat['published']:,} signals; {where}; target p99 <= 10)"
        )
    if via:
        ms = [x * 1000 for x in via["signal"]]
        print(
            f"{'  through a gateway, scored (ms)':<34}"
            f"{f'p50 {_pct(ms, 50):.2f}  p99 {_pct(ms, 99):.2f}':>18}   "
            f"({len(ms):,} of {via['published']:,} signals; tradeloop serve fed over HTTP, "
            f"{via['rate']:,.0f} bars/s achieved)"
        )


if __name__ == "__main__":
    main()
