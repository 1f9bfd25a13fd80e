"""The operational store as `tradeloop status` reads it: plain SELECTs through
`tradeloop.store.dbapi` (no SQLAlchemy import; see there for the figure).

Each function returns exactly what its SQLAlchemy counterpart returns (`deployments.current`,
`alerts.open_alerts`, `gateway_reports.latest_serving`, `control.status.controller_status`,
and the rollout and trigger reads of `status_report`); tests/control/test_status_read.py holds
the two paths equal on SQLite and PostgreSQL, so a schema change cannot split them silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tradeloop.store.dbapi import ReadOnlyDB, Unsupported, as_datetime, as_json
from tradeloop.store.revision import SCHEMA_HEAD, VERSION_TABLE

if TYPE_CHECKING:
    from tradeloop.store.core import Store

OPEN_STATES = ("pending", "firing")
_PARKED = re.compile(r"^parked \(([a-z_]+)\): (.*)$", re.S)


def _parked(outcome: str, message: str) -> dict[str, str] | None:
    """The reason a controller is parked, from its last run (the manager writes
    'parked (<reason>): <message>'); None when it is not parked."""
    if outcome != "terminal":
        return None
    m = _PARKED.match(message)
    return {"reason": m.group(1) if m else "other", "message": m.group(2) if m else message}


def of_store(store: Store) -> ReadOnlyDB:
    """A reader on a store that is already open (its pool's DB-API connection)."""
    return ReadOnlyDB(store.engine.raw_connection(), store.engine.dialect.paramstyle == "qmark")


def current_or_none(url: str) -> ReadOnlyDB | None:
    """A reader on the database at `url` if it exists at the schema this code expects; None
    when it is missing or behind (open the `Store` then, which creates or migrates it) or the
    URL's scheme has no DB-API reader here."""
    try:
        db = ReadOnlyDB.open(url)
    except Unsupported:
        return None
    if db is None:
        return None
    try:
        ok = db.has_table(VERSION_TABLE) and db.rows(
            f"SELECT version_num FROM {VERSION_TABLE}"
        ) == [{"version_num": SCHEMA_HEAD}]
    except Exception:
        db.close()
        raise
    if not ok:
        db.close()
        return None
    return db


_CONTROLLER_PREFIX = "controller:"


def latest_rollout(db: ReadOnlyDB, name: str) -> dict[str, Any] | None:
    rows = db.rows(
        "SELECT * FROM rollouts WHERE model_name = ? ORDER BY updated_at DESC, id DESC LIMIT 1",
        (name,),
    )
    if not rows:
        return None
    r = rows[0]
    extra = as_json(r["analysis"]) or {}
    return {
        "version": r["version"],
        "strategy": r["strategy"],
        "phase": r["phase"],
        "step": r["step"],
        "status": r["status"],
        "reason": r["reason"],
        "phase_started_at": str(as_datetime(r["phase_started_at"], aware=False)),
        "last_analysis": extra.get("verdict"),
        "failures": extra.get("failures", 0),
        "extensions": extra.get("extensions", 0),
    }


def last_trigger(db: ReadOnlyDB, name: str) -> dict[str, Any] | None:
    rows = db.rows(
        "SELECT * FROM training_triggers WHERE model_name = ? ORDER BY id DESC LIMIT 1", (name,)
    )
    if not rows:
        return None
    r = rows[0]
    return {
        "trigger": r["trigger_key"],
        "reason": r["reason"],
        "status": r["status"],
        "version": r["version"],
        "run_id": r["run_id"],
    }


def deployments(db: ReadOnlyDB, name: str) -> list[dict[str, Any]]:
    rows = db.rows(
        "SELECT model_name, variant, version, mode, weight FROM deployments"
        " WHERE model_name = ? ORDER BY variant",
        (name,),
    )
    return [dict(r) for r in rows]


def open_alerts(db: ReadOnlyDB, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Pending and firing alerts carrying `labels`, oldest first (as `AlertRecord.to_dict`)."""
    rows = db.rows("SELECT * FROM alerts WHERE state IN (?, ?) ORDER BY id DESC", OPEN_STATES)
    out = []
    for r in rows:
        tags = dict(as_json(r["labels"]) or {})
        if not all(tags.get(k) == v for k, v in labels.items()):
            continue
        doc = {k: r[k] for k in ("id", "rule", "fingerprint", "state", "value")}
        for k in ("started_at", "fired_at", "resolved_at", "last_eval_at"):
            ts = as_datetime(r[k])
            doc[k] = ts.isoformat() if ts is not None else None
        doc["labels"] = tags
        out.append(doc)
    return sorted(out, key=lambda d: d["id"])


def gateway_reports(db: ReadOnlyDB, name: str, *, scan: int = 500) -> list[dict[str, Any]]:
    """The newest report of each gateway serving `name`, newest first."""
    rows = db.rows(
        "SELECT ts, payload FROM events WHERE controller = ? AND action = ?"
        " ORDER BY id DESC LIMIT ?",
        ("gateway", "serving", scan),
    )
    seen: dict[str, dict[str, Any]] = {}
    for r in rows:
        payload = as_json(r["payload"])
        if not isinstance(payload, dict) or payload.get("model") != name:
            continue
        gw = str(payload.get("gateway", ""))
        if gw not in seen:
            seen[gw] = {**payload, "reported_at": str(as_datetime(r["ts"], aware=False))}
    return list(seen.values())


def controller_status(db: ReadOnlyDB, now: datetime) -> list[dict[str, Any]]:
    """Per controller: its last run, its last success, and who holds its lease now."""
    last = db.rows(
        "SELECT r.* FROM controller_runs r JOIN (SELECT MAX(id) AS id FROM controller_runs"
        " GROUP BY controller) m ON r.id = m.id"
    )
    ok = db.rows(
        "SELECT controller, MAX(started_at) AS ts FROM controller_runs WHERE outcome = 'ok'"
        " GROUP BY controller"
    )
    held = db.rows("SELECT * FROM leases WHERE name LIKE ?", (f"{_CONTROLLER_PREFIX}%",))
    runs = {r["controller"]: r for r in last}
    successes = {r["controller"]: as_datetime(r["ts"]) for r in ok}
    owners = {r["name"].removeprefix(_CONTROLLER_PREFIX): r for r in held}
    out = []
    for name in sorted(runs.keys() | owners.keys()):
        run, lease = runs.get(name), owners.get(name)
        expires = as_datetime(lease["expires_at"]) if lease else None
        live = expires is not None and expires > now
        out.append(
            {
                "controller": name,
                "last_run_at": as_datetime(run["started_at"]) if run else None,
                "outcome": run["outcome"] if run else None,
                "message": run["message"] if run else "",
                "duration_s": run["duration_s"] if run else None,
                "last_success_at": successes.get(name),
                "holder": lease["holder"] if live and lease else None,
                "lease_expires_at": expires if live else None,
                "parked": _parked(run["outcome"], run["message"]) if run else None,
            }
        )
    return out
