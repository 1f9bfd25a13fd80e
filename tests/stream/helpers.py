"""A project on the simulator with a `data.stream` section, and a NATS publisher."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

# The template's simulated history ends here (3000 hourly bars from 2023-01-02).
HISTORY_END = datetime(2023, 1, 2, tzinfo=UTC) + timedelta(hours=2999)
SYMBOLS = ("AAA", "BBB", "CCC", "DDD")


def need(port: int, what: str) -> None:
    with socket.socket() as s:
        s.settimeout(0.5)
        if s.connect_ex(("127.0.0.1", port)) != 0:
            pytest.skip(f"no {what} at 127.0.0.1:{port}")


def add_stream(project: Path, broker: str = "nats", **extra: Any) -> dict[str, str]:
    """Give the project's spec a stream on fresh names; returns them."""
    name = f"t{uuid.uuid4().hex[:10]}"
    url = "nats://127.0.0.1:4222" if broker == "nats" else "redis://127.0.0.1:6379/0"
    subject = f"{name}.>" if broker == "nats" else name
    lines = [
        "  stream:",
        f"    broker: {broker}",
        f"    url: {url}",
        f"    subject: '{subject}'",
        f"    stream: {name}",
        f"    consumer: {name}",
        "    ack_wait: 1s",
    ] + [f"    {k}: {v}" for k, v in extra.items()]
    spec = project / "tradeloop.yaml"
    text = spec.read_text()
    text = text.replace("\ndata:\n", "\ndata:\n" + "\n".join(lines) + "\n", 1)
    spec.write_text(text)
    return {"name": name, "subject": subject}


def bar(symbol: str, i: int, close: float | None = None) -> dict[str, Any]:
    c = 100.0 + (i % 7) if close is None else close
    return {
        "symbol": symbol,
        "timestamp": (HISTORY_END + timedelta(hours=i)).isoformat(),
        "open": c,
        "high": c + 1,
        "low": c - 1,
        "close": c,
        "volume": 1000.0 + i,
    }


async def _publish(subject: str, stream: str, payloads: list[bytes]) -> None:
    import nats

    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()
    try:
        await js.stream_info(stream)
    except Exception:  # nats-py's NotFoundError; the ingest would create it the same way
        await js.add_stream(name=stream, subjects=[subject])
    for p in payloads:
        await js.publish(subject.replace(">", "x"), p, stream=stream)
    await nc.drain()


def publish_nats(names: dict[str, str], docs: list[Any]) -> None:
    """Publish with nats-py, as any producer would (JSON documents or raw bytes)."""
    payloads = [d if isinstance(d, bytes) else json.dumps(d).encode() for d in docs]
    asyncio.run(_publish(names["subject"], names["name"], payloads))


async def wait_for_signals(names: dict[str, str], docs: list[Any], last: str) -> list[Any]:
    """Subscribe to `signals.proj.>`, publish `docs`, and collect signals until every symbol
    has one for the bar at `last` (or two minutes pass)."""
    import nats

    nc = await nats.connect("nats://127.0.0.1:4222")
    got: list[Any] = []
    sub = await nc.subscribe("signals.proj.>")
    await nc.flush()
    await asyncio.to_thread(publish_nats, names, docs)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            msg = await sub.next_msg(timeout=1)
        except Exception:  # nats-py's TimeoutError: keep waiting until the deadline
            continue
        got.append(json.loads(msg.data))
        if {s["symbol"] for s in got if s["timestamp"] == last} == set(SYMBOLS):
            break
    await nc.close()
    return got
