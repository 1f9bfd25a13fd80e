"""Engines and migrations: SQLite by default, any SQLAlchemy URL (PostgreSQL at scale).

Alembic is imported only when the schema is behind: a database already at `SCHEMA_HEAD` is
checked with one query, which keeps short commands (`tradeloop status`) fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from tradeloop.errors import BadInput, RuntimeFailure

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).with_name("migrations")
# Our own version table: Optuna's RDB storage (sharing this database) uses `alembic_version`.
VERSION_TABLE = "tradeloop_alembic_version"
# The newest revision in migrations/versions; tests/store checks it against Alembic's head.
SCHEMA_HEAD = "0002"


def normalize_url(url: str) -> str:
    """Plain `postgresql://` URLs use psycopg 3, the driver we ship."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise BadInput(f"TRADELOOP_DB_URL is not a database URL: {url!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _sqlite_serializable_writes(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_serializable_writes(engine: Engine) -> None:
    """WAL so readers never block, and BEGIN IMMEDIATE so two writers queue instead of failing.

    pysqlite's default deferred transactions let two writers read the same audit head and then
    deadlock on upgrade; the documented SQLAlchemy recipe is to take control of BEGIN.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:  # the DB-API connection is untyped
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def schema_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    try:
        with engine.connect() as conn:
            row = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
    except DBAPIError:  # no version table yet (or no database): migrate will say what is wrong
        return None
    return None if row is None else str(row[0])


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; idempotent, safe to run on every start."""
    if revision in ("head", SCHEMA_HEAD) and schema_revision(engine) == SCHEMA_HEAD:
        return
    from alembic import command

    cfg = alembic_config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except OperationalError as exc:
        raise RuntimeFailure(f"cannot migrate the database at {engine.url!r}: {exc.orig}") from exc


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())
