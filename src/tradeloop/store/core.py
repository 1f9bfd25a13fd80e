"""The `Store`: the engine, migrated on open, plus the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from tradeloop.clock import Clock
from tradeloop.store.audit import AuditLog
from tradeloop.store.engine import ensure_schema, make_engine, migrate


class Store:
    """The database plus the audit log, migrated to the newest schema on open."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self.audit = AuditLog(engine, clock)

    @classmethod
    def open(cls, url: str, clock: Clock, *, run_migrations: bool = True) -> Store:
        if run_migrations:
            ensure_schema(url)  # a new SQLite file is built whole, or not at all
        engine = make_engine(url)
        if run_migrations:
            migrate(engine)
        return cls(engine, clock)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()
