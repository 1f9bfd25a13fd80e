"""Redis Streams through redis-py: a consumer group, XACK after the write, pending reclaimed.

The consumer's name within the group is stable per host (`<consumer>@<hostname>`), so after a
restart it first re-reads its own pending entries (XREADGROUP from id 0); entries another,
dead consumer left pending longer than `ack_wait` are claimed with XAUTOCLAIM.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

from tradeloop.errors import RuntimeFailure
from tradeloop.spec import StreamSpec
from tradeloop.stream.delivery import Delivery, expand_url


def _delivery(stream: str, entry_id: Any, fields: dict[bytes, bytes] | None) -> Delivery:
    eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return Delivery((fields or {}).get(b"data", b""), entry_id, f"{stream}:{eid}")


class RedisSource:
    def __init__(self, spec: StreamSpec, ack_wait: timedelta = timedelta(seconds=30)) -> None:
        self.spec = spec
        self.ack_wait = ack_wait
        self.key = spec.subject
        self.name = f"{spec.consumer}@{socket.gethostname()}"
        self._r: Any = None
        self._pending = True
        self._pending_from: Any = "0"

    async def open(self) -> None:
        import redis.asyncio as aioredis
        from redis.exceptions import ConnectionError, ResponseError

        url = expand_url(self.spec.url)
        self._r = aioredis.from_url(url)
        try:
            await self._r.xgroup_create(self.key, self.spec.consumer, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        except ConnectionError as exc:
            raise RuntimeFailure(f"cannot connect to Redis at {url}: {exc}") from exc

    async def fetch(self, batch: int, timeout: float) -> list[Delivery]:
        group = self.spec.consumer
        if self._pending:  # our own entries delivered before a restart, not yet acked
            # after the last one taken: its ack may still be in flight (ingest pipelines acks)
            got = await self._r.xreadgroup(
                group, self.name, {self.key: self._pending_from}, count=batch
            )
            entries = got[0][1] if got else []
            if entries:
                self._pending_from = entries[-1][0]
                return [_delivery(self.key, i, f) for i, f in entries]
            self._pending = False
        claimed = await self._r.xautoclaim(
            self.key,
            group,
            self.name,
            min_idle_time=int(self.ack_wait.total_seconds() * 1000),
            start_id="0-0",
            count=batch,
        )
        if claimed and claimed[1]:
            return [_delivery(self.key, i, f) for i, f in claimed[1]]
        got = await self._r.xreadgroup(
            group, self.name, {self.key: ">"}, count=batch, block=max(1, int(timeout * 1000))
        )
        entries = got[0][1] if got else []
        return [_delivery(self.key, i, f) for i, f in entries]

    async def ack(self, deliveries: list[Delivery]) -> None:
        if deliveries:
            await self._r.xack(self.key, self.spec.consumer, *[d.handle for d in deliveries])

    async def publish(self, subject: str, data: bytes) -> None:
        await self._r.xadd(self.key, {"data": data})

    async def notify(self, subject: str, data: bytes) -> None:
        await self._r.xadd(subject, {"data": data}, maxlen=10_000, approximate=True)

    async def close(self) -> None:
        if self._r is not None:
            await self._r.aclose()
            self._r = None
