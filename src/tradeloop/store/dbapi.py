"""Read-only SQL through the DB-API drivers themselves (sqlite3, psycopg), without SQLAlchemy.

Short commands must start in under half a second (`tradeloop status`; issue 9), and importing
SQLAlchemy alone costs 0.15 s of the 0.55 s `status` took with it (measured with
`python -X importtime`, bench/cli_start.py prints the command's total). What they read is a
handful of SELECTs, so they read with the driver; everything that writes, migrates or needs
a dialect goes through `tradeloop.store` and SQLAlchemy as before.

URLs are the ones `TRADELOOP_DB_URL` and `MLFLOW_TRACKING_URI` take: `sqlite:///path`, and
`postgresql[+psycopg]://…`. Other schemes raise `Unsupported`, and callers fall back to
SQLAlchemy. A SQLite file that does not exist reads as "no database" (`open` returns None),
and the file is opened read-only, so reading never creates or changes a store.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["ReadOnlyDB", "Unsupported", "as_datetime", "as_json"]


class Unsupported(ValueError):
    """A URL scheme this module does not read (use SQLAlchemy)."""


def _sqlite_path(url: str) -> str:
    rest = url.split(":", 1)[1]
    if not rest.startswith("///"):
        raise Unsupported(f"not a sqlite:/// URL: {url!r}")
    return rest[3:].split("?", 1)[0]


class ReadOnlyDB:
    def __init__(self, conn: Any, qmark: bool) -> None:
        """`conn`: any DB-API connection (an engine's `raw_connection()` too); `qmark`: its
        paramstyle is `?` (sqlite3) rather than `%s` (psycopg, MySQL drivers)."""
        self._conn = conn
        self._qmark = qmark

    @classmethod
    def open(cls, url: str) -> ReadOnlyDB | None:
        scheme = url.split(":", 1)[0].lower()
        if scheme == "sqlite":
            path = _sqlite_path(url)
            if path in ("", ":memory:") or not Path(path).exists():
                return None
            return cls(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30), qmark=True)
        if scheme.split("+", 1)[0] in ("postgresql", "postgres"):
            import psycopg

            conninfo = "postgresql://" + url.split("://", 1)[1]
            return cls(psycopg.connect(conninfo, autocommit=True), qmark=False)
        raise Unsupported(f"no DB-API reader for {scheme!r} URLs")

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """The rows of a SELECT written with `?` placeholders, as dicts by column name."""
        if not self._qmark:
            sql = sql.replace("%", "%%").replace("?", "%s")
        cur = self._conn.cursor()
        try:
            cur.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        finally:
            cur.close()

    def has_table(self, name: str) -> bool:
        if self._qmark:
            q = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            q = "SELECT table_name FROM information_schema.tables WHERE table_name = ?"
        return bool(self.rows(q, (name,)))

    def columns(self, table: str) -> list[str]:
        if self._qmark:
            return [r["name"] for r in self.rows(f"PRAGMA table_info({table})")]
        q = "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
        return [r["column_name"] for r in self.rows(q, (table,))]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ReadOnlyDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def as_datetime(value: Any, *, aware: bool = True) -> datetime | None:
    """A timestamp column as SQLAlchemy returns it: SQLite keeps text (naive, UTC by our
    convention), PostgreSQL an aware datetime. `aware=False` keeps SQLite's naive value, for
    output that must read as SQLAlchemy's does."""
    if value is None:
        return None
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if aware:
        return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return ts


def as_json(value: Any) -> Any:
    """A JSON column: SQLite keeps text, psycopg has already parsed it."""
    return json.loads(value) if isinstance(value, str | bytes) else value
