"""What each gateway says it actually serves, so `tradeloop status` shows more than intent.

Deployment state says what should answer; a gateway whose deployed version failed
verification answers with an older one. Each gateway writes a row to `events`
(controller `gateway`, action `serving`) whenever what it serves changes, and `status` reads
the newest row per gateway. A report is as old as its `ts`: a gateway that died reports
nothing further, so readers show the time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tradeloop.store import Store
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
    with store.engine.connect() as c:
        rows = c.execute(
            select(events.c.ts, events.c.payload)
            .where(events.c.controller == CONTROLLER, events.c.action == ACTION)
            .order_by(events.c.id.desc())
            .limit(scan)
        ).all()
    seen: dict[str, dict[str, Any]] = {}
    for ts, payload in rows:
        if not isinstance(payload, dict) or payload.get("model") != model_name:
            continue
        gw = str(payload.get("gateway", ""))
        if gw not in seen:
            seen[gw] = {**payload, "reported_at": str(ts)}
    return list(seen.values())
