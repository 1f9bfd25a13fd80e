"""What `tradeloop status` shows about the controllers, read from the database alone, so any
replica (or a CLI on another machine) sees the same answer."""

from __future__ import annotations

from typing import Any

from tradeloop.clock import utc
from tradeloop.store import Store, reads


def controller_status(store: Store) -> list[dict[str, Any]]:
    """Per controller, by name: its last run (time, outcome, message, duration), its last
    success, and who holds its lease now (None once the lease has expired)."""
    with reads.of_store(store) as db:
        return reads.controller_status(db, utc(store.clock.now()))
