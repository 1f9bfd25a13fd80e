"""NATS JetStream through nats-py: a durable pull consumer with explicit acks."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from tradeloop.errors import RuntimeFailure
from tradeloop.spec import StreamSpec
from tradeloop.stream.delivery import Delivery, expand_url

# s: how long a fetch waits for more once it has a message. The server holds a pull request
# open up to its expiry unless the batch fills, so this is added to every small batch's
# latency; messages arriving after it wait in the client's queue for the next fetch.
LINGER = 0.0005


class NatsSource:
    def __init__(self, spec: StreamSpec, ack_wait: timedelta = timedelta(seconds=30)) -> None:
        self.spec = spec
        self.ack_wait = ack_wait
        self._nc: Any = None
        self._js: Any = None
        self._sub: Any = None

    async def open(self) -> None:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        url = expand_url(self.spec.url)
        try:
            self._nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=-1)
        except Exception as exc:  # nats-py raises several unrelated types for "no server"
            raise RuntimeFailure(f"cannot connect to NATS at {url}: {exc}") from exc
        self._js = self._nc.jetstream(timeout=30)  # API calls wait on a loaded server
        try:
            await self._js.stream_info(self.spec.stream)
        except NotFoundError:
            await self._js.add_stream(name=self.spec.stream, subjects=[self.spec.subject])
        config = ConsumerConfig(
            durable_name=self.spec.consumer,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait.total_seconds(),
            max_ack_pending=max(1000, self.spec.batch * 4),
            filter_subject=self.spec.subject,
        )
        self._sub = await self._js.pull_subscribe(
            self.spec.subject, durable=self.spec.consumer, stream=self.spec.stream, config=config
        )

    async def fetch(self, batch: int, timeout: float) -> list[Delivery]:
        """Wait up to `timeout` for the first message, then take what else is there within
        `LINGER` s: a pull for the whole batch would linger on the server until the batch is
        full or `timeout` ends, so a trickle of bars would wait the whole poll (latency).
        When the first one came from the client's queue, the rest usually has too."""
        import nats.errors

        timeouts = (TimeoutError, nats.errors.TimeoutError)
        try:
            msgs = list(await self._sub.fetch(1, timeout=timeout))
        except timeouts:
            return []
        if batch > 1:
            with contextlib.suppress(*timeouts):  # nothing more right now
                msgs += await self._sub.fetch(batch - 1, timeout=LINGER)
        stream = self.spec.stream
        return [Delivery(m.data, m, f"{stream}:{m.metadata.sequence.stream}") for m in msgs]

    async def ack(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            await d.handle.ack()
        await self._nc.flush()

    async def publish(self, subject: str, data: bytes) -> None:
        await self._js.publish(subject, data, stream=self.spec.stream)

    async def notify(self, subject: str, data: bytes) -> None:
        await self._nc.publish(subject, data)

    async def close(self) -> None:
        if self._nc is not None:
            try:
                await self._nc.flush(timeout=10)
            finally:
                await self._nc.close()
                self._nc = None
