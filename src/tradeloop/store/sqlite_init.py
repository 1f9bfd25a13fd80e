"""Create a SQLite database file atomically: build it beside its final name, then rename.

A process killed while creating a schema (MLflow's ~50 Alembic migrations, or ours) used to
leave a half-made file that every later command tripped over (`table secrets already exists`).
Here the schema is built in `<file>.init-<pid>` under an exclusive lock, and `os.replace` puts
it in place only once it is complete: after a kill at any instant the database is either
absent (the next start builds it) or whole. A builder's leftovers are removed by the next one,
which holds the lock, so none is still being written.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import make_url

Build = Callable[[str], None]  # builds a complete schema at the given sqlite URL
State = Callable[[Path], Literal["complete", "empty", "data"]]


def sqlite_file(url: str) -> Path | None:
    """The file of a `sqlite:///path` URL; None for in-memory or non-SQLite URLs."""
    try:
        parsed = make_url(url)
    except Exception:  # not a URL at all: the caller's engine reports it properly
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (released by the kernel if the holder dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def table_rows(db: Path, tables: tuple[str, ...]) -> tuple[set[str], int]:
    """The file's table names, and how many rows the listed tables (those present) hold."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        rows = sum(
            int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])
            for t in tables
            if t in names
        )
    return names, rows


def _needs_build(db: Path, state: State) -> bool:
    return not db.exists() or db.stat().st_size == 0 or state(db) == "empty"


def ensure_built(db: Path, build: Build, state: State) -> bool:
    """Make sure `db` holds a complete schema; True if it was (re)built now.

    `state(db)` judges an existing file: "complete"; "empty" (a half-made schema holding no
    data, e.g. from before this scheme: moved aside to `<file>.broken` and rebuilt); or
    "data" (incomplete but holding data: left alone, for the engine to migrate or report).
    """
    if not _needs_build(db, state):
        return False
    with file_lock(db.with_name(db.name + ".lock")):
        if not _needs_build(db, state):
            return False  # another process built it while we waited
        for stale in db.parent.glob(db.name + ".init-*"):
            stale.unlink(missing_ok=True)
        if db.exists():
            os.replace(db, db.with_name(db.name + ".broken"))
            for side in ("-wal", "-shm", "-journal"):
                db.with_name(db.name + side).unlink(missing_ok=True)
        tmp = db.with_name(f"{db.name}.init-{os.getpid()}")
        build(f"sqlite:///{tmp}")
        for side in ("-wal", "-shm", "-journal"):
            db.with_name(tmp.name + side).unlink(missing_ok=True)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, db)
        _fsync_dir(db.parent)
    return True
