"""The tamper-evident audit log: an append-only hash chain in the operational store.

Each entry's hash covers its id, time, actor, action, subject, payload and the previous entry's
hash; a one-row head records the newest id and hash. Editing, deleting or reordering any entry,
including the newest, breaks the chain at a named entry. (Someone who can rewrite the whole
table and the head can forge a chain; ship the head hash elsewhere to guard against that.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from tradeloop.clock import Clock, utc
from tradeloop.store.tables import audit_head, audit_log

GENESIS = "0" * 64


def canonical_json(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def _ts_text(ts: datetime) -> str:
    return utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    prev_hash: str, entry_id: int, ts: datetime, actor: str, action: str, subject: str, payload: str
) -> str:
    body = json.dumps([prev_hash, entry_id, _ts_text(ts), actor, action, subject, payload])
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    id: int
    ts: datetime
    actor: str
    action: str
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ts"] = _ts_text(self.ts)
        return d


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    first_bad_id: int | None = None
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AuditLog:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    @contextmanager
    def _conn(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self._engine.begin() as c:
                yield c

    def append(
        self,
        actor: str,
        action: str,
        subject: str,
        payload: dict[str, Any] | None = None,
        conn: Connection | None = None,
    ) -> AuditEntry:
        """Append one entry. Pass `conn` to make it part of the caller's transaction."""
        body = canonical_json(payload or {})
        ts = self._clock.now()
        with self._conn(conn) as c:
            head = c.execute(
                select(audit_head.c.last_id, audit_head.c.last_hash)
                .where(audit_head.c.id == 1)
                .with_for_update()
            ).one()
            new_id = head.last_id + 1
            h = entry_hash(head.last_hash, new_id, ts, actor, action, subject, body)
            c.execute(
                audit_log.insert().values(
                    id=new_id,
                    ts=ts,
                    actor=actor,
                    action=action,
                    subject=subject,
                    payload=body,
                    prev_hash=head.last_hash,
                    hash=h,
                )
            )
            c.execute(
                update(audit_head).where(audit_head.c.id == 1).values(last_id=new_id, last_hash=h)
            )
        return AuditEntry(new_id, ts, actor, action, subject, json.loads(body), head.last_hash, h)

    def list(
        self, limit: int | None = None, action: str | None = None, subject: str | None = None
    ) -> list[AuditEntry]:
        q = select(audit_log).order_by(audit_log.c.id.desc())
        if action:
            q = q.where(audit_log.c.action == action)
        if subject:
            q = q.where(audit_log.c.subject == subject)
        if limit:
            q = q.limit(limit)
        with self._engine.connect() as c:
            rows = c.execute(q).all()
        return [
            AuditEntry(
                r.id,
                utc(r.ts),
                r.actor,
                r.action,
                r.subject,
                json.loads(r.payload),
                r.prev_hash,
                r.hash,
            )
            for r in reversed(rows)
        ]

    def verify(self) -> Verification:
        """Walk the chain from the first entry; name the first entry that does not hold."""
        prev, expected_id, n = GENESIS, 1, 0
        with self._engine.connect() as c:
            head = c.execute(select(audit_head).where(audit_head.c.id == 1)).one()
            for r in c.execute(select(audit_log).order_by(audit_log.c.id)):
                n += 1
                if r.id != expected_id:
                    return Verification(
                        False, n, expected_id, f"entry {expected_id} is missing (next is {r.id})"
                    )
                if r.prev_hash != prev:
                    return Verification(
                        False,
                        n,
                        r.id,
                        f"entry {r.id} does not follow entry {r.id - 1} (reordered or edited)",
                    )
                h = entry_hash(r.prev_hash, r.id, r.ts, r.actor, r.action, r.subject, r.payload)
                if h != r.hash:
                    return Verification(False, n, r.id, f"entry {r.id} was edited (hash mismatch)")
                prev, expected_id = r.hash, expected_id + 1
        if head.last_id != expected_id - 1 or head.last_hash != prev:
            return Verification(
                False,
                n,
                expected_id,
                f"entries after {expected_id - 1} were deleted (head says {head.last_id})",
            )
        return Verification(True, n)
