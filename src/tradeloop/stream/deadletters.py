"""Dead letters: every refused message or bar, with its raw text and reason, in the store.

A table (not a broker subject) so that `tradeloop ingest dead-letters` on any machine, and
every ingest replica, see one list; rows are written in the same step as the bars of the batch,
before the broker is acked, so a refusal is never lost either. A message redelivered after a
crash before its ack is refused again: each row's key (the broker's message id, or the
message's sha256 when the broker gives none, with the sha256 of the refused text) makes that
second write a no-op (INSERT … ON CONFLICT DO NOTHING), so each refusal is recorded once.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

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


def message_id(data: bytes, broker_id: str | None) -> str:
    """What names a message across deliveries: the broker's id, else its content's hash."""
    return broker_id if broker_id is not None else "sha256:" + hashlib.sha256(data).hexdigest()


def letter_key(message: str, rejected: Rejected) -> str:
    """One refused item of one message (two identical bad bars in a message are one letter)."""
    return hashlib.sha256(f"{message}\0{rejected.raw}".encode()).hexdigest()


def record(store: Store, consumer: str, rejected: list[tuple[str, Rejected]]) -> int:
    """Write each (message id, refusal) not recorded before; returns how many rows are new."""
    if not rejected:
        return 0
    now = store.clock.now()
    rows = {
        letter_key(mid, r): {
            "consumer": consumer,
            "received_at": now,
            "code": r.code,
            "reason": r.reason,
            "raw": r.raw,
            "message_key": letter_key(mid, r),
        }
        for mid, r in rejected
    }
    dialect = postgresql if store.engine.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(dead_letters)
        .on_conflict_do_nothing(index_elements=["consumer", "message_key"])
        .returning(dead_letters.c.id)  # rowcount of an executemany is not portable
    )
    with store.begin() as c:
        return len(c.execute(stmt, list(rows.values())).all())


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
