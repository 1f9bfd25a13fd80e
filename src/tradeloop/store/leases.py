"""Leader leases: a row per name with a holder and an expiry, so two replicas never act at once.

Works the same on SQLite (writes are serialized by BEGIN IMMEDIATE) and PostgreSQL (the row is
locked FOR UPDATE; a racing first insert loses on the primary key and reports not acquired).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from tradeloop.clock import utc
from tradeloop.store import Store
from tradeloop.store.tables import leases


def acquire(store: Store, name: str, holder: str, ttl: timedelta) -> bool:
    """Take or renew the lease; False if someone else holds an unexpired one."""
    now = utc(store.clock.now())
    try:
        with store.begin() as c:
            row = c.execute(select(leases).where(leases.c.name == name).with_for_update()).first()
            if row is None:
                c.execute(leases.insert().values(name=name, holder=holder, expires_at=now + ttl))
                return True
            if row.holder != holder and utc(row.expires_at) > now:
                return False
            c.execute(
                update(leases)
                .where(leases.c.name == name)
                .values(holder=holder, expires_at=now + ttl)
            )
            return True
    except IntegrityError:
        return False


def release(store: Store, name: str, holder: str) -> None:
    with store.begin() as c:
        c.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))


def holder_of(store: Store, name: str) -> str | None:
    now = utc(store.clock.now())
    with store.engine.connect() as c:
        row = c.execute(select(leases).where(leases.c.name == name)).first()
    return row.holder if row is not None and utc(row.expires_at) > now else None
