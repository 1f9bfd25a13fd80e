"""A durable left as a pull consumer (by an earlier tradeloop) is taken over where it stood:
the new push consumer starts after its ack floor, so nothing acked comes again and nothing
unacked is lost."""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import timedelta

import pytest

from tradeloop.spec import StreamSpec
from tradeloop.stream.nats_source import NatsSource


def _up(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


async def _scenario(name: str) -> list[bytes]:
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[f"{name}.>"])
    for i in range(6):
        await js.publish(f"{name}.in", f"m{i}".encode(), stream=name)
    config = ConsumerConfig(durable_name=name, ack_policy=AckPolicy.EXPLICIT, ack_wait=30)
    pull = await js.pull_subscribe(f"{name}.>", durable=name, stream=name, config=config)
    taken = await pull.fetch(3, timeout=5)
    for m in taken:
        await m.ack_sync()
    await nc.close()

    spec = StreamSpec(url="nats://127.0.0.1:4222", subject=f"{name}.>", stream=name, consumer=name)
    src = NatsSource(spec, timedelta(seconds=30))
    await src.open()
    got: list[bytes] = []
    try:
        for _ in range(20):
            got += [d.data for d in await src.fetch(10, 0.3)]
            if len(got) >= 3:
                break
        got += [d.data for d in await src.fetch(10, 0.5)]  # nothing more may come
    finally:
        await src.close()
        nc = await nats.connect("nats://127.0.0.1:4222")
        await nc.jetstream().delete_stream(name)
        await nc.close()
    return got


def test_a_pull_durable_is_continued_after_its_ack_floor() -> None:
    if not _up(4222):
        pytest.skip("no NATS server at 127.0.0.1:4222")
    got = asyncio.run(_scenario(f"mig{uuid.uuid4().hex[:8]}"))
    assert got == [b"m3", b"m4", b"m5"]
