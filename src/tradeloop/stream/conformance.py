"""The conformance suite every stream source passes (NATS JetStream, Redis Streams, plug-ins).

`check_stream_source(make)` returns the ways a source breaks the contract in
`tradeloop.stream.source`, one sentence each ([] when it conforms). `make(name)` must return a
new, unopened source on a fresh stream and consumer named from `name`, with a short `ack_wait`
(the suite waits 3 × ack_wait for redelivery); calling it twice with one name gives two
handles on the same durable consumer, as a restarted ingest would have.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from tradeloop.conformance import collect_failures
from tradeloop.stream.source import Delivery, StreamSource

__all__ = ["StreamConformanceError", "check_stream_source"]

Make = Callable[[str], StreamSource]


class StreamConformanceError(AssertionError):
    pass


def _fail(message: str) -> StreamConformanceError:
    return StreamConformanceError(message)


async def _drain(src: StreamSource, want: int, deadline_s: float) -> list[Delivery]:
    got: list[Delivery] = []
    end = time.monotonic() + deadline_s
    while len(got) < want and time.monotonic() < end:
        got += await src.fetch(want - len(got), 0.5)
    return got


def _subject(name: str) -> str:
    return f"{name}.in"


async def _roundtrip(make: Make, name: str, ack_wait: float) -> None:
    src = make(name)
    await src.open()
    try:
        sent = [f"m{i}".encode() for i in range(5)]
        for m in sent:
            await src.publish(_subject(name), m)
        got = await _drain(src, 5, 10)
        if [d.data for d in got] != sent:
            raise _fail(f"published {sent}, fetched {[d.data for d in got]} (order and content)")
        await src.ack(got)
    finally:
        await src.close()
    again = make(name)
    await again.open()
    try:
        extra = await _drain(again, 1, 3 * ack_wait + 1)
        if extra:
            raise _fail(f"acked messages came again after a restart: {[d.data for d in extra]}")
    finally:
        await again.close()


async def _redelivery(make: Make, name: str, ack_wait: float) -> None:
    src = make(name)
    await src.open()
    try:
        for i in range(3):
            await src.publish(_subject(name), f"r{i}".encode())
        first = await _drain(src, 3, 10)
        if len(first) != 3:
            raise _fail(f"fetched {len(first)} of 3 published messages")
    finally:
        await src.close()  # a consumer that died before acking
    src = make(name)
    await src.open()
    try:
        again = await _drain(src, 3, 3 * ack_wait + 5)
        if sorted(d.data for d in again) != [b"r0", b"r1", b"r2"]:
            raise _fail(f"unacked messages must come again; got {[d.data for d in again]}")
        await src.ack(again)
    finally:
        await src.close()


async def _bounded(make: Make, name: str, ack_wait: float) -> None:
    src = make(name)
    await src.open()
    try:
        for i in range(10):
            await src.publish(_subject(name), f"b{i}".encode())
        await asyncio.sleep(0.2)
        got = await src.fetch(4, 2.0)
        if not 0 < len(got) <= 4:
            raise _fail(f"fetch(4) returned {len(got)} messages (must be 1..4 when 10 wait)")
        await src.ack(got)
        t = time.monotonic()
        rest = await _drain(src, 10 - len(got), 10)
        await src.ack(rest)
        empty = await src.fetch(5, 0.3)
        if empty or time.monotonic() - t > 15:
            raise _fail("an empty stream must return [] within the timeout")
    finally:
        await src.close()


CHECKS: dict[str, Callable[[Make, str, float], Coroutine[Any, Any, None]]] = {
    "roundtrip_and_ack": _roundtrip,
    "unacked_come_again": _redelivery,
    "fetch_is_bounded": _bounded,
}


def check_stream_source(make: Make, ack_wait: float) -> list[str]:
    """Every contract failure of the sources `make` builds; [] if none."""

    def run(
        check: Callable[[Make, str, float], Coroutine[Any, Any, None]],
    ) -> Callable[[str], None]:
        return lambda case: asyncio.run(check(make, f"conf{uuid.uuid4().hex[:10]}", ack_wait))

    return collect_failures(
        {name: run(c) for name, c in CHECKS.items()}, {"source": "source"}, StreamConformanceError
    )
