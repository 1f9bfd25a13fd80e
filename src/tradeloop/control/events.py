"""The timeline: what each controller did and why, one row per step in the `events` table.

Events are for people (the console's timeline, `tradeloop status`); the tamper-evident record
of decisions is the audit log. Payloads are stored as JSON that both SQLite and PostgreSQL
accept: non-finite floats become null (PostgreSQL refuses `NaN` in JSON), numpy scalars become
Python numbers, datetimes ISO strings, timedeltas seconds. Anything else is refused by name,
so a bad payload fails in the controller's tests rather than as a database error later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Connection, select

from tradeloop.clock import utc
from tradeloop.store import Store
from tradeloop.store.tables import events

# Column widths in `store/tables.py`; PostgreSQL enforces them, SQLite would not.
_WIDTHS = {"controller": 64, "action": 64, "version": 32}


@dataclass(frozen=True)
class Event:
    id: int
    ts: datetime
    controller: str
    action: str
    version: str | None
    reason: str
    payload: dict[str, Any]


def record_event(
    target: Store | Connection,
    controller: str,
    action: str,
    *,
    ts: datetime,
    version: str | int | None = None,
    reason: str = "",
    payload: dict[str, Any] | None = None,
) -> None:
    """Append one event; pass a Connection to write it in the caller's transaction."""
    row = {
        "ts": utc(ts),
        "controller": controller,
        "action": action,
        "version": None if version is None else str(version),
        "reason": reason,
        "payload": jsonable(payload or {}, "payload"),
    }
    for col, width in _WIDTHS.items():
        if row[col] is not None and len(row[col]) > width:
            raise ValueError(f"event {col} is longer than {width} characters: {row[col]!r}")
    if isinstance(target, Connection):
        target.execute(events.insert().values(**row))
    else:
        with target.begin() as c:
            c.execute(events.insert().values(**row))


def list_events(
    store: Store, *, controller: str | None = None, since: datetime | None = None, limit: int = 100
) -> list[Event]:
    """The newest `limit` events (optionally one controller's, at or after `since`), oldest first."""
    q = select(events).order_by(events.c.ts.desc(), events.c.id.desc()).limit(limit)
    if controller is not None:
        q = q.where(events.c.controller == controller)
    if since is not None:
        q = q.where(events.c.ts >= utc(since))
    with store.engine.connect() as c:
        rows = c.execute(q).all()
    return [
        Event(r.id, utc(r.ts), r.controller, r.action, r.version, r.reason, r.payload or {})
        for r in reversed(rows)
    ]


def jsonable(value: Any, where: str = "value") -> Any:
    """`value` as plain JSON types (see the module docstring); `where` names it in errors."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Enum):
        return jsonable(value.value, where)
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {str(k): jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and getattr(value, "shape", None) == ():
        return jsonable(item(), where)
    raise TypeError(f"event {where}: cannot store a {type(value).__name__} as JSON")
