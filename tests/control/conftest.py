"""Fixtures for the control tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tradeloop.clock import SimulatedClock
from tradeloop.store import Store


@pytest.fixture
def lite(sqlite_url: str, clock: SimulatedClock) -> Iterator[Store]:
    """A SQLite store only, for logic no database difference can affect (the `store` fixture
    runs on PostgreSQL too, at about a second of setup per test)."""
    s = Store.open(sqlite_url, clock)
    yield s
    s.close()
