"""The stream-source contract: a durable consumer on a broker, fetched and acked in batches.

A source delivers messages at least once: what is fetched and not acked is delivered again
(after the consumer restarts, or after `ack_wait`), so ingest acks only after the bars are
durably written, and its writes are idempotent by (symbol, timestamp). Fetching a bounded batch
and processing it before the next is the backpressure: memory is bounded by `batch` (and, for
a broker that pushes, by its limit on unacked messages), whatever the broker holds.

Sources are looked up by `data.stream.broker`; `tradeloop.stream.conformance` is the suite
every source passes (the NATS JetStream and Redis Streams sources, and any plug-in).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Protocol, runtime_checkable

from tradeloop.errors import BadInput
from tradeloop.spec import StreamSpec
from tradeloop.stream.delivery import Delivery, expand_url
from tradeloop.stream.nats_source import NatsSource
from tradeloop.stream.redis_source import RedisSource

__all__ = [
    "Delivery",
    "StreamSource",
    "expand_url",
    "register_stream_source",
    "stream_source",
    "stream_source_names",
]


@runtime_checkable
class StreamSource(Protocol):
    async def open(self) -> None:
        """Connect, and create the stream and the durable consumer if they don't exist."""
        ...

    async def fetch(self, batch: int, timeout: float) -> list[Delivery]:
        """Up to `batch` messages, waiting at most `timeout` s for the first; [] if none."""
        ...

    async def ack(self, deliveries: list[Delivery]) -> None:
        """Acknowledge these messages: they will not be delivered again."""
        ...

    async def publish(self, subject: str, data: bytes) -> None:
        """Append a message to the stream durably (the broker confirmed it): replay, tests."""
        ...

    async def notify(self, subject: str, data: bytes) -> None:
        """Publish an event for live subscribers (signals); not part of the consumed stream."""
        ...

    async def close(self) -> None: ...


Factory = Callable[[StreamSpec, timedelta], StreamSource]
_REGISTRY: dict[str, Factory] = {"nats": NatsSource, "redis": RedisSource}


def register_stream_source(name: str, factory: Factory) -> None:
    _REGISTRY[name] = factory


def stream_source_names() -> list[str]:
    return sorted(_REGISTRY)


def stream_source(spec: StreamSpec, ack_wait: timedelta = timedelta(seconds=30)) -> StreamSource:
    """The source for `spec.broker`; `ack_wait` is how soon an unacked message comes again."""
    try:
        factory = _REGISTRY[spec.broker]
    except KeyError:
        raise BadInput(
            f"data.stream.broker {spec.broker!r} is not one of {stream_source_names()}"
        ) from None
    return factory(spec, ack_wait)
