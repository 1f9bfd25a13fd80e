"""What `tradeloop status` shows about the controllers, read from the database alone, so any
replica (or a CLI on another machine) sees the same answer."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

from tradeloop.clock import utc
from tradeloop.store import Store
from tradeloop.store.tables import controller_runs, leases

_PREFIX = "controller:"
_PARKED = re.compile(r"^parked \(([a-z_]+)\): (.*)$", re.S)


def _parked(outcome: str, message: str) -> dict[str, str] | None:
    """The reason a controller is parked, from its last run (the manager writes
    'parked (<reason>): <message>'); None when it is not parked."""
    if outcome != "terminal":
        return None
    m = _PARKED.match(message)
    return {"reason": m.group(1) if m else "other", "message": m.group(2) if m else message}


def controller_status(store: Store) -> list[dict[str, Any]]:
    """Per controller, by name: its last run (time, outcome, message, duration), its last
    success, and who holds its lease now (None once the lease has expired)."""
    now = utc(store.clock.now())
    latest = (
        select(func.max(controller_runs.c.id).label("id"))
        .group_by(controller_runs.c.controller)
        .subquery()
    )
    with store.engine.connect() as c:
        last = c.execute(select(controller_runs).join(latest, controller_runs.c.id == latest.c.id))
        ok = c.execute(
            select(controller_runs.c.controller, func.max(controller_runs.c.started_at))
            .where(controller_runs.c.outcome == "ok")
            .group_by(controller_runs.c.controller)
        )
        held = c.execute(select(leases).where(leases.c.name.like(f"{_PREFIX}%")))
        runs = {r.controller: r for r in last}
        successes = {name: utc(ts) for name, ts in ok}
        owners = {r.name.removeprefix(_PREFIX): r for r in held}
    out = []
    for name in sorted(runs.keys() | owners.keys()):
        run, lease = runs.get(name), owners.get(name)
        live = lease is not None and utc(lease.expires_at) > now
        out.append(
            {
                "controller": name,
                "last_run_at": utc(run.started_at) if run else None,
                "outcome": run.outcome if run else None,
                "message": run.message if run else "",
                "duration_s": run.duration_s if run else None,
                "last_success_at": successes.get(name),
                "holder": lease.holder if live and lease else None,
                "lease_expires_at": utc(lease.expires_at) if live and lease else None,
                "parked": _parked(run.outcome, run.message) if run else None,
            }
        )
    return out
