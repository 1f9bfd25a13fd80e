"""Both brokers pass the one stream-source suite, against the real servers on 127.0.0.1."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest

from tradeloop.spec import StreamSpec
from tradeloop.stream.conformance import check_stream_source
from tradeloop.stream.nats_source import NatsSource
from tradeloop.stream.redis_source import RedisSource

ACK_WAIT = 1.0


def _up(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_nats_jetstream_conforms() -> None:
    if not _up(4222):
        pytest.skip("no NATS server at 127.0.0.1:4222")

    def make(name: str) -> NatsSource:
        spec = StreamSpec(
            url="nats://127.0.0.1:4222", subject=f"{name}.>", stream=name, consumer=name
        )
        return NatsSource(spec, timedelta(seconds=ACK_WAIT))

    assert check_stream_source(make, ACK_WAIT) == []


def test_redis_streams_conform() -> None:
    if not _up(6379):
        pytest.skip("no Redis server at 127.0.0.1:6379")

    def make(name: str) -> RedisSource:
        spec = StreamSpec(
            broker="redis", url="redis://127.0.0.1:6379/0", subject=name, stream=name, consumer=name
        )
        return RedisSource(spec, timedelta(seconds=ACK_WAIT))

    assert check_stream_source(make, ACK_WAIT) == []


@pytest.mark.slow
def test_a_broken_source_fails_the_suite() -> None:
    """The suite can fail: a source that forgets what it was sent is caught."""

    class Forgetful(RedisSource):
        async def publish(self, subject: str, data: bytes) -> None:
            return None

    if not _up(6379):
        pytest.skip("no Redis server at 127.0.0.1:6379")

    def make(name: str) -> Forgetful:
        spec = StreamSpec(
            broker="redis", url="redis://127.0.0.1:6379/0", subject=name, consumer=name
        )
        return Forgetful(spec, timedelta(seconds=ACK_WAIT))

    failures = check_stream_source(make, ACK_WAIT)
    assert any(f.startswith("roundtrip_and_ack") for f in failures), failures
