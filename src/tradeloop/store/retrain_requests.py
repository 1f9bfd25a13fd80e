"""Retraining requested from outside (a cloud scheduler, an operator), kept for the trainer.

A request is a `training_triggers` row with status `requested` and key `request:<id>`, the id
chosen by the client. The table's unique (model, key) constraint makes a repeated POST of the
same id a no-op, so an event bus that delivers at least once still trains once. The trainer
claims the row (`requested` → `running`) exactly as it claims an alert's trigger, so a request
obeys the same rules: one training at a time, none while a challenger is in rollout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from tradeloop.errors import BadInput
from tradeloop.store import Store
from tradeloop.store.tables import training_triggers

REQUESTED = "requested"
KEY_PREFIX = "request:"
MAX_ID = 200
MAX_REASON = 1000


class RequestConflict(BadInput):
    """The id was already used for a different request (the gateway answers 409)."""


@dataclass(frozen=True)
class RetrainRequest:
    model_name: str
    request_id: str
    reason: str
    status: str  # requested, running, registered or gated
    created: bool  # False: this id was recorded before, nothing changed


def check_request(request_id: object, reason: object) -> tuple[str, str]:
    """The id and reason, or BadInput naming what is wrong with them."""
    if not isinstance(request_id, str) or not request_id.strip():
        raise BadInput("'id' must be a non-empty string (the client's idempotency key)")
    if len(request_id) > MAX_ID or not request_id.isprintable():
        raise BadInput(f"'id' must be at most {MAX_ID} printable characters")
    if not isinstance(reason, str) or not reason.strip():
        raise BadInput("'reason' must be a non-empty string saying why to retrain")
    if len(reason) > MAX_REASON:
        raise BadInput(f"'reason' must be at most {MAX_REASON} characters")
    return request_id, reason


def request_retraining(
    store: Store, model_name: str, request_id: str, reason: str, *, actor: str
) -> RetrainRequest:
    """Record the request once; the same id again returns the recorded one unchanged.

    Conflict if the id was already used with a different reason (a client bug: two different
    requests must not share a key)."""
    request_id, reason = check_request(request_id, reason)
    key = KEY_PREFIX + request_id
    now = store.clock.now()
    try:
        with store.begin() as c:
            c.execute(
                training_triggers.insert().values(
                    model_name=model_name,
                    trigger_key=key,
                    reason=reason,
                    status=REQUESTED,
                    created_at=now,
                    updated_at=now,
                )
            )
            store.audit.append(
                actor,
                "training.request",
                f"model:{model_name}",
                {"trigger": key, "reason": reason},
                conn=c,
            )
        return RetrainRequest(model_name, request_id, reason, REQUESTED, True)
    except IntegrityError:
        pass
    with store.engine.connect() as c:
        row = c.execute(
            select(training_triggers.c.reason, training_triggers.c.status).where(
                training_triggers.c.model_name == model_name,
                training_triggers.c.trigger_key == key,
            )
        ).one()
    if row.reason != reason:
        raise RequestConflict(
            f"retrain request id {request_id!r} was already used with another reason "
            f"({row.reason!r}); use a new id for a new request"
        )
    return RetrainRequest(model_name, request_id, reason, str(row.status), False)


def requested_by(store: Store, model_name: str, key: str) -> str | None:
    """Who asked for trigger `key`: the actor of its `training.request` audit entry, so the
    version it trains can name a person (`triggered_by`) for the four-eyes rule. None for
    triggers nobody requested (the schedule, an alert, the first model)."""
    if not key.startswith(KEY_PREFIX):
        return None
    for entry in store.audit.list(action="training.request", subject=f"model:{model_name}"):
        if entry.payload.get("trigger") == key:
            return entry.actor
    return None


def oldest_request(store: Store, model_name: str) -> tuple[str, str] | None:
    """(trigger key, reason) of the oldest request not yet claimed, if any."""
    with store.engine.connect() as c:
        row = c.execute(
            select(training_triggers.c.trigger_key, training_triggers.c.reason)
            .where(
                training_triggers.c.model_name == model_name,
                training_triggers.c.status == REQUESTED,
            )
            .order_by(training_triggers.c.id)
            .limit(1)
        ).first()
    return (str(row.trigger_key), str(row.reason)) if row else None


def claim_request(conn: Connection, model_name: str, key: str, now: datetime) -> bool:
    """Move a request to `running` inside the caller's transaction; False if taken already."""
    res = conn.execute(
        update(training_triggers)
        .where(
            training_triggers.c.model_name == model_name,
            training_triggers.c.trigger_key == key,
            training_triggers.c.status == REQUESTED,
        )
        .values(status="running", updated_at=now)
    )
    return res.rowcount == 1
