"""Alert rows: one row of the `alerts` table per episode of an alert, and the queries on them.

The state machine that decides the rows' states lives in `monitoring.alert_rules`; the engine
that applies it, in `monitoring.alerts`. Readers (the report, `status`, the trainer's
`retraining.on`) use the functions here. Labels are JSON, so filtering by them is done in
Python, on the few open rows or a page of recent ones at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, select, update

from tradeloop.clock import utc
from tradeloop.store import Store
from tradeloop.store.tables import alerts

__all__ = [
    "OPEN",
    "AlertRecord",
    "AlertState",
    "firing_alerts",
    "insert_alert",
    "open_alerts",
    "open_rows",
    "recent_alerts",
    "update_alert",
]

AlertState = Literal["inactive", "pending", "firing", "resolved"]
OPEN: tuple[AlertState, ...] = ("pending", "firing")


@dataclass(frozen=True)
class AlertRecord:
    """A row of the `alerts` table."""

    id: int
    rule: str
    fingerprint: str
    state: AlertState
    value: float | None
    started_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    last_eval_at: datetime
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("started_at", "fired_at", "resolved_at", "last_eval_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d

    @classmethod
    def of(cls, row: Any) -> AlertRecord:
        def opt(ts: datetime | None) -> datetime | None:
            return utc(ts) if ts is not None else None

        return cls(
            id=row.id,
            rule=row.rule,
            fingerprint=row.fingerprint,
            state=row.state,
            value=row.value,
            started_at=utc(row.started_at),
            fired_at=opt(row.fired_at),
            resolved_at=opt(row.resolved_at),
            last_eval_at=utc(row.last_eval_at),
            labels=dict(row.labels or {}),
        )


def _matches(rec: AlertRecord, labels: Mapping[str, str]) -> bool:
    return all(rec.labels.get(k) == v for k, v in labels.items())


def open_rows(conn: Connection, labels: Mapping[str, str]) -> list[AlertRecord]:
    """Pending and firing rows carrying `labels`, newest first."""
    rows = conn.execute(
        select(alerts).where(alerts.c.state.in_(OPEN)).order_by(alerts.c.id.desc())
    ).all()
    return [rec for rec in map(AlertRecord.of, rows) if _matches(rec, labels)]


def insert_alert(conn: Connection, rec: AlertRecord) -> AlertRecord:
    """Insert a new episode (`rec.id` is ignored); returns it with the id the database gave."""
    values = asdict(rec)
    del values["id"]
    key = conn.execute(alerts.insert().values(**values)).inserted_primary_key
    assert key is not None  # a single-row insert always reports its key
    return replace(rec, id=int(key[0]))


def update_alert(conn: Connection, rec: AlertRecord, **changes: Any) -> AlertRecord:
    """Change columns of an existing row; returns the record as it now is."""
    conn.execute(update(alerts).where(alerts.c.id == rec.id).values(**changes))
    return replace(rec, **changes)


def open_alerts(store: Store, *, labels: Mapping[str, str] | None = None) -> list[AlertRecord]:
    """Pending and firing alerts (optionally only those carrying `labels`), oldest first."""
    with store.engine.connect() as conn:
        return sorted(open_rows(conn, labels or {}), key=lambda r: r.id)


def firing_alerts(store: Store, *, labels: Mapping[str, str] | None = None) -> list[AlertRecord]:
    """Firing alerts (optionally only those carrying `labels`), oldest first."""
    return [r for r in open_alerts(store, labels=labels) if r.state == "firing"]


def recent_alerts(
    store: Store, *, limit: int = 50, labels: Mapping[str, str] | None = None
) -> list[AlertRecord]:
    """Newest alert rows first, optionally only those carrying `labels` (the report uses it)."""
    want = dict(labels or {})
    out: list[AlertRecord] = []
    before: int | None = None
    with store.engine.connect() as conn:
        while len(out) < limit:  # labels are JSON: filter in Python, a page at a time
            q = select(alerts).order_by(alerts.c.id.desc()).limit(max(limit, 200))
            if before is not None:
                q = q.where(alerts.c.id < before)
            page = [AlertRecord.of(r) for r in conn.execute(q)]
            if not page:
                break
            before = page[-1].id
            out += [r for r in page if _matches(r, want)]
    return out[:limit]
