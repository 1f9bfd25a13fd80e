"""The embedded MLflow SQLite store, created whole or not at all.

MLflow builds its schema with ~50 Alembic migrations the first time a client touches a new
`sqlite:///` file, and they are not transactional on SQLite: a process killed half-way left a
file that every later start refused (`table secrets already exists`, `_alembic_tmp_experiments
already exists`) until deleted by hand. Here the schema is built at a temporary name and renamed
into place (store/sqlite_init.py). A half-made file that holds no runs, models or experiments
of ours, as such a kill left before this existed, is moved aside and rebuilt; one holding
data is left for MLflow to migrate or report.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Literal

from tradeloop.store.sqlite_init import ensure_built, sqlite_file, table_rows

# Tables whose rows are someone's work: a file holding any is never rebuilt.
_DATA_TABLES = ("runs", "registered_models", "model_versions", "logged_models")


def _head() -> str:
    # MLflow's own head lookup (it runs the same at every store start, in _verify_schema).
    from mlflow.store.db.utils import _get_latest_schema_revision

    return str(_get_latest_schema_revision())


def _state(db: Path) -> Literal["complete", "empty", "data"]:
    import sqlite3

    names, rows = table_rows(db, _DATA_TABLES)
    if "alembic_version" in names and not any(n.startswith("_alembic_tmp") for n in names):
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
            found = {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")}
        if found == {_head()}:
            return "complete"
    if rows:
        return "data"
    if "experiments" in names:
        _, experiments = table_rows(db, ("experiments",))
        if experiments > 1:  # more than MLflow's Default experiment
            return "data"
    return "empty"


def _build(url: str) -> None:
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    engine = sqlalchemy.create_engine(url)
    try:
        _initialize_tables(engine)  # what MLflow's SqlAlchemyStore runs on an empty database
    finally:
        engine.dispose()


def ensure_mlflow_store(tracking_uri: str) -> bool:
    """Build a missing (or half-made, empty) SQLite tracking store; True if built now."""
    db = sqlite_file(tracking_uri)
    if db is None:
        return False
    return ensure_built(db, _build, _state)
