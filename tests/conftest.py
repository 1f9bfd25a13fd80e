"""Shared fixtures: real databases (SQLite file, and PostgreSQL when reachable), clocks, projects."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.pg import fresh_database
from tradeloop.clock import SimulatedClock
from tradeloop.store import Store

PG_BASE = os.environ.get("TRADELOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")


def _pg_admin_url() -> str:
    return f"{PG_BASE}/postgres"


def pg_available() -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        eng = create_engine(_pg_admin_url(), connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_BASE}: {type(exc).__name__}"


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of a PostgreSQL server. In CI it must be there; elsewhere we skip."""
    why = pg_available()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {why}")
        pytest.skip(why)
    return PG_BASE


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_database(pg_server, "tl_test") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tradeloop.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tradeloop.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(datetime(2024, 3, 1, 9, 30, tzinfo=UTC))


@pytest.fixture
def store(db_url: str, clock: SimulatedClock) -> Iterator[Store]:
    s = Store.open(db_url, clock)
    yield s
    s.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files that hold slow tests run first (otherwise in collection order), so that on
    pytest-xdist workers (`./dev test --all`, one file at a time per worker) the minutes-long
    end-to-end files are not left until the end, with one worker running them and the other
    idle. The order is the same in every worker, as xdist requires."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: False (slow) first
