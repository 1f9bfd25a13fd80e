"""Leader leases: a row per name with a holder and an expiry, so two replicas never act at once.

Works the same on SQLite (writes are serialized by BEGIN IMMEDIATE) and PostgreSQL (the row is
locked FOR UPDATE; a racing first insert loses on the primary key and reports not acquired).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from tradeloop.clock import utc
from tradeloop.store import Store
from tradeloop.store.tables import leases


def process_holder(tag: str = "") -> str:
    """A holder id naming this host and process, so a dead holder on this host is recognised."""
    return f"{socket.gethostname()}:{os.getpid()}" + (f":{tag}" if tag else "")


def holder_is_dead(holder: str) -> bool:
    """True only when the holder is a process on this host that no longer exists."""
    parts = holder.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire(
    store: Store,
    name: str,
    holder: str,
    ttl: timedelta,
    stale: Callable[[str], bool] = holder_is_dead,
) -> bool:
    """Take or renew the lease; False if someone else holds an unexpired one (unless `stale`
    says that holder is gone, e.g. a killed process on this host)."""
    now = utc(store.clock.now())
    try:
        with store.begin() as c:
            row = c.execute(select(leases).where(leases.c.name == name).with_for_update()).first()
            if row is None:
                c.execute(leases.insert().values(name=name, holder=holder, expires_at=now + ttl))
                return True
            if row.holder != holder and utc(row.expires_at) > now and not stale(row.holder):
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


def holder_of(store: Store, name: str, stale: Callable[[str], bool] = holder_is_dead) -> str | None:
    """Who holds the lease now: None once it expired or its holder is gone (as `acquire`
    judges it, so a dead holder is seen as gone as soon as `acquire` would take over)."""
    now = utc(store.clock.now())
    with store.engine.connect() as c:
        row = c.execute(select(leases).where(leases.c.name == name)).first()
    if row is None or utc(row.expires_at) <= now or stale(row.holder):
        return None
    return str(row.holder)


class Heartbeat:
    """Renews a held lease every ttl/3 on a background thread while long work runs."""

    def __init__(self, store: Store, name: str, holder: str, ttl: timedelta) -> None:
        self._args = (store, name, holder, ttl)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{name}", daemon=True)

    def _run(self) -> None:
        interval = self._args[3].total_seconds() / 3
        while not self._stop.wait(interval):
            acquire(*self._args)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
