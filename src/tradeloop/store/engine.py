"""Engines and migrations: SQLite by default, any SQLAlchemy URL (PostgreSQL at scale).

Alembic is imported only when the schema is behind: a database already at `SCHEMA_HEAD` is
checked with one query, which keeps short commands (`tradeloop status`) fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from tradeloop.errors import BadInput, RuntimeFailure
from tradeloop.store.revision import SCHEMA_HEAD, VERSION_TABLE
from tradeloop.store.sqlite_init import ensure_built, sqlite_file, table_rows

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock key for migrations: a fixed 64-bit number ("tradeloo" in ASCII).
MIGRATION_LOCK = 0x74726164656C6F6F


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
    _upgrade(engine, revision)


def _upgrade(engine: Engine, revision: str) -> None:
    """Alembic's upgrade in one transaction; on PostgreSQL under an advisory lock, so replicas
    starting together migrate one after another (the second finds the schema at head)."""
    from alembic import command

    cfg = alembic_config()
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except OperationalError as exc:
        raise RuntimeFailure(f"cannot migrate the database at {engine.url!r}: {exc.orig}") from exc


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())


def _state(db: Path) -> Literal["complete", "empty", "data"]:
    """Ours once our version table exists (migrate brings it to head); empty if it has no
    tables at all; otherwise someone else's tables (Optuna's) that migrate adds ours beside."""
    names, _ = table_rows(db, ())
    if VERSION_TABLE in names:
        return "complete"
    return "empty" if not names else "data"


def ensure_schema(url: str) -> None:
    """A new SQLite store is built whole at a temporary name and renamed into place, so a
    kill during the first start never leaves a half-made one (store/sqlite_init.py)."""
    db = sqlite_file(normalize_url(url))
    if db is None:
        return

    def build(tmp_url: str) -> None:
        engine = create_engine(tmp_url)
        try:
            _upgrade(engine, "head")
        finally:
            engine.dispose()

    ensure_built(db, build, _state)
