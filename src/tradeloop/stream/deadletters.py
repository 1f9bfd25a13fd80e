"""Dead letters: every refused message or bar, with its raw text and reason, in the store.

A table (not a broker subject) so that `tradeloop ingest dead-letters` on any machine, and
every ingest replica, see one list; rows are written in the same step as the bars of the batch,
before the broker is acked, so a refusal is never lost either.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select

from tradeloop.clock import utc
from tradeloop.store import Store
from tradeloop.store.tables import dead_letters
from tradeloop.stream.messages import Rejected


@dataclass(frozen=True)
class DeadLetter:
    id: int
    consumer: str
    received_at: datetime
    code: str
    reason: str
    raw: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "received_at": self.received_at.isoformat()}


def record(store: Store, consumer: str, rejected: list[Rejected]) -> None:
    if not rejected:
        return
    now = store.clock.now()
    with store.begin() as c:
        c.execute(
            insert(dead_letters),
            [
                {
                    "consumer": consumer,
                    "received_at": now,
                    "code": r.code,
                    "reason": r.reason,
                    "raw": r.raw,
                }
                for r in rejected
            ],
        )


def listed(store: Store, consumer: str | None = None, limit: int = 100) -> list[DeadLetter]:
    """The newest dead letters first."""
    q = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
    if consumer is not None:
        q = q.where(dead_letters.c.consumer == consumer)
    with store.engine.connect() as c:
        return [
            DeadLetter(r.id, r.consumer, utc(r.received_at), r.code, r.reason, r.raw)
            for r in c.execute(q)
        ]


def counts(store: Store, consumer: str | None = None) -> dict[str, int]:
    q = select(dead_letters.c.code, func.count()).group_by(dead_letters.c.code)
    if consumer is not None:
        q = q.where(dead_letters.c.consumer == consumer)
    with store.engine.connect() as c:
        return {code: int(n) for code, n in c.execute(q)}
