"""What each gateway says it actually serves, so `tradeloop status` shows more than intent.

Deployment state says what should answer; a gateway whose deployed version failed
verification answers with an older one. Each gateway writes a row to `events`
(controller `gateway`, action `serving`) whenever what it serves changes, and `status` reads
the newest row per gateway. A report is as old as its `ts`: a gateway that died reports
nothing further, so readers show the time.
"""

from __future__ import annotations

from typing import Any

from tradeloop.store import Store, reads
from tradeloop.store.tables import events

CONTROLLER = "gateway"
ACTION = "serving"


def record_serving(store: Store, gateway: str, report: dict[str, Any]) -> None:
    """Append `gateway`'s report (the model, readiness and per-variant versions)."""
    with store.begin() as conn:
        conn.execute(
            events.insert().values(
                ts=store.clock.now(),
                controller=CONTROLLER,
                action=ACTION,
                version=None,
                reason=gateway[:200],
                payload={**report, "gateway": gateway},
            )
        )


def latest_serving(store: Store, model_name: str, *, scan: int = 500) -> list[dict[str, Any]]:
    """The newest report of each gateway serving `model_name`, newest first."""
    with reads.of_store(store) as db:
        return reads.gateway_reports(db, model_name, scan=scan)
