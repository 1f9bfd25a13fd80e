"""New SQLite stores appear whole or not at all; half-made empty ones are rebuilt, never ones
holding data; PostgreSQL replicas migrating together take turns."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tradeloop.clock import SimulatedClock
from tradeloop.registry.mlflow_registry import Registry
from tradeloop.registry.mlflow_store import ensure_mlflow_store
from tradeloop.store import Store
from tradeloop.store.engine import SCHEMA_HEAD, VERSION_TABLE, make_engine, schema_revision
from tradeloop.store.sqlite_init import ensure_built


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as c:
        return {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_a_build_killed_half_way_leaves_no_database(tmp_path: Path) -> None:
    db = tmp_path / "x.db"

    def dies(url: str) -> None:
        create_engine(url).dispose()
        with sqlite3.connect(url.removeprefix("sqlite:///")) as c:
            c.execute("CREATE TABLE half (a)")
        raise KeyboardInterrupt  # stands in for the kill: nothing after it runs

    with pytest.raises(KeyboardInterrupt):
        ensure_built(db, dies, lambda _p: "complete")
    assert not db.exists()  # the half-made schema stayed at its temporary name

    def whole(url: str) -> None:
        with sqlite3.connect(url.removeprefix("sqlite:///")) as c:
            c.execute("CREATE TABLE whole (a)")

    assert ensure_built(db, whole, lambda _p: "complete")
    assert _tables(db) == {"whole"}
    assert list(tmp_path.glob("x.db.init-*")) == []  # the dead builder's leftovers are gone
    assert not ensure_built(db, whole, lambda _p: "complete")  # complete: left alone


def test_operational_store_is_built_at_head(tmp_path: Path, clock: SimulatedClock) -> None:
    url = f"sqlite:///{tmp_path / 'state' / 'tradeloop.db'}"
    store = Store.open(url, clock)
    try:
        assert schema_revision(store.engine) == SCHEMA_HEAD
        store.audit.append("t", "x.y", "t:1", {})
    finally:
        store.close()
    assert [p.name for p in (tmp_path / "state").glob("*.init-*")] == []


def test_an_empty_operational_file_is_rebuilt(tmp_path: Path, clock: SimulatedClock) -> None:
    db = tmp_path / "tradeloop.db"
    db.touch()  # a kill right after the file was created
    Store.open(f"sqlite:///{db}", clock).close()
    assert VERSION_TABLE in _tables(db)


def _half_made_mlflow(db: Path) -> None:
    """What a kill between MLflow's create_all and its Alembic upgrade leaves."""
    from mlflow.store.tracking.dbmodels.initial_models import Base

    engine = create_engine(f"sqlite:///{db}")
    Base.metadata.create_all(engine)
    engine.dispose()


def test_a_half_made_empty_mlflow_store_is_rebuilt(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    _half_made_mlflow(db)
    uri = f"sqlite:///{db}"
    reg = Registry.open(uri, str(tmp_path / "art"))
    assert (tmp_path / "mlflow.db.broken").exists()  # moved aside, not deleted
    assert reg.experiment_id("p")  # MLflow works on the rebuilt store
    assert not ensure_mlflow_store(uri)


def test_a_half_made_mlflow_store_with_runs_is_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    _half_made_mlflow(db)
    with sqlite3.connect(db) as c:
        c.execute(
            "INSERT INTO experiments (experiment_id, name, lifecycle_stage) "
            "VALUES (1, 'mine', 'active')"
        )
        c.execute(
            "INSERT INTO experiments (experiment_id, name, lifecycle_stage) "
            "VALUES (2, 'other', 'active')"
        )
    before = db.read_bytes()
    assert not ensure_mlflow_store(f"sqlite:///{db}")
    assert db.read_bytes() == before


@pytest.mark.postgres
def test_postgres_replicas_migrating_together_take_turns(
    pg_url: str, clock: SimulatedClock
) -> None:
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            Store.open(pg_url, clock).close()
        except BaseException as exc:  # collected, then asserted on the main thread
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = make_engine(pg_url)
    try:
        assert schema_revision(engine) == SCHEMA_HEAD
        with engine.connect() as c:
            assert c.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar() == 1
    finally:
        engine.dispose()
