"""NATS JetStream through nats-py: a durable push consumer with explicit acks.

Push, not pull: the server sends each message as it is stored, up to `max_ack_pending`
unacked (the backpressure, and the bound on what waits here), so a fetch takes what has
arrived without a request to the server. Pull fetches cost a round trip each, and nats-py's
lingering pull requests outlive their fetch: a late "408 Request Timeout" for one made the
next fetch return empty, so a step went idle with bars waiting.

A durable of this name left by an earlier version as a pull consumer is replaced by a push
consumer that starts after its ack floor: what it had not acked comes again, and is known by
(symbol, timestamp) as a duplicate.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import timedelta
from typing import Any

from tradeloop.errors import RuntimeFailure
from tradeloop.spec import StreamSpec
from tradeloop.stream.delivery import Delivery, expand_url


class NatsSource:
    def __init__(self, spec: StreamSpec, ack_wait: timedelta = timedelta(seconds=30)) -> None:
        self.spec = spec
        self.ack_wait = ack_wait
        self._nc: Any = None
        self._js: Any = None
        self._sub: Any = None
        self._arrived: deque[Any] = deque()
        self._more = asyncio.Event()

    async def open(self) -> None:
        import nats

        url = expand_url(self.spec.url)
        try:
            self._nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=-1)
        except Exception as exc:  # nats-py raises several unrelated types for "no server"
            raise RuntimeFailure(f"cannot connect to NATS at {url}: {exc}") from exc
        self._js = self._nc.jetstream(timeout=30)  # API calls wait on a loaded server
        await self._ensure_stream()
        config = await self._consumer_config()
        self._sub = await self._js.subscribe(
            self.spec.subject,
            durable=self.spec.consumer,
            stream=self.spec.stream,
            config=config,
            manual_ack=True,
            cb=self._arrive,
        )

    async def _ensure_stream(self) -> None:
        from nats.js.errors import NotFoundError

        try:
            await self._js.stream_info(self.spec.stream)
        except NotFoundError:
            await self._js.add_stream(name=self.spec.stream, subjects=[self.spec.subject])

    async def _consumer_config(self) -> Any:
        """The push consumer's config; a pull durable of the same name is replaced."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        config = ConsumerConfig(
            durable_name=self.spec.consumer,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait.total_seconds(),
            max_ack_pending=max(1000, self.spec.batch * 4),
            filter_subject=self.spec.subject,
            deliver_subject=self._nc.new_inbox(),
        )
        try:
            info = await self._js.consumer_info(self.spec.stream, self.spec.consumer)
        except NotFoundError:
            return config
        if info.config.deliver_subject:  # already a push consumer: subscribe binds to it
            return config
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        await self._js.delete_consumer(self.spec.stream, self.spec.consumer)
        if floor:
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = floor + 1
        return config

    async def _arrive(self, msg: Any) -> None:
        self._arrived.append(msg)
        self._more.set()

    async def fetch(self, batch: int, timeout: float) -> list[Delivery]:
        """What has arrived, up to `batch`, waiting up to `timeout` s for the first."""
        if not self._arrived:
            self._more.clear()
            try:
                await asyncio.wait_for(self._more.wait(), timeout)
            except TimeoutError:
                return []
        arrived, stream = self._arrived, self.spec.stream
        out = []
        for _ in range(min(batch, len(arrived))):
            m = arrived.popleft()
            out.append(Delivery(m.data, m, f"{stream}:{m.metadata.sequence.stream}"))
        return out

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
