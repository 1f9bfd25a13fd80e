"""`POST /v1/retrain`: what a cloud event path (EventBridge, Pub/Sub, Event Grid) or an operator
calls to ask for a new training run of the model this gateway serves.

It only records the request (`store/retrain_requests`); the trainer controller honours it on
its next reconcile, exactly once, as it honours a firing alert. The client's `id` makes the
call idempotent: a retried delivery answers 200 with what was recorded first, a new one 202.
"""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from tradeloop.errors import BadInput
from tradeloop.serving.context import Ctx
from tradeloop.serving.gateway import Gateway, ok
from tradeloop.serving.http import ApiError, bad_request, parse_json, read_body, require_json
from tradeloop.serving.openapi import Open
from tradeloop.serving.protocol import JSON, Op, Reply
from tradeloop.store import retrain_requests as requests

BODY_LIMIT = 16_384
FIELDS = {"pipeline", "id", "reason"}


class RetrainBody(BaseModel):
    """A retraining request; `pipeline` defaults to the model this gateway serves."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=requests.MAX_ID)
    reason: str = Field(min_length=1, max_length=requests.MAX_REASON)
    pipeline: str | None = None


class RetrainRecorded(Open):
    pipeline: str
    id: str
    reason: str
    status: str
    created: bool


def _fields(gw: Gateway, doc: Any) -> tuple[str, str]:
    if not isinstance(doc, dict):
        raise bad_request("the body must be a JSON object with 'id' and 'reason'")
    unknown = sorted(set(doc) - FIELDS)
    if unknown:
        raise bad_request(f"unknown field(s) {unknown}; expected {sorted(FIELDS)}")
    pipeline = doc.get("pipeline", gw.model_name)
    if pipeline != gw.model_name:
        raise ApiError(404, f"this gateway serves pipeline {gw.model_name!r}, not {pipeline!r}")
    try:
        return requests.check_request(doc.get("id"), doc.get("reason"))
    except BadInput as exc:
        raise bad_request(str(exc)) from exc


def retrain_ops(gw: Gateway) -> list[Op]:
    store = gw.auth.store

    async def retrain(request: Request, ctx: Ctx) -> Response:
        who = await gw.auth.require(ctx, "operator")
        require_json(ctx.headers)
        request_id, reason = _fields(
            gw, parse_json(await read_body(request, ctx.headers, BODY_LIMIT))
        )
        try:
            rec = await to_thread.run_sync(
                lambda: requests.request_retraining(
                    store, gw.model_name, request_id, reason, actor=who.actor
                )
            )
        except requests.RequestConflict as exc:
            raise ApiError(409, str(exc)) from exc
        body = {
            "pipeline": rec.model_name,
            "id": rec.request_id,
            "reason": rec.reason,
            "status": rec.status,
            "created": rec.created,
        }
        return ok(body, 202 if rec.created else 200)

    done = Reply("RetrainRecorded", "Already recorded under this id; nothing changed")
    return [
        Op(
            "POST",
            "/v1/retrain",
            retrain,
            "retrain",
            {202: Reply("RetrainRecorded", "Recorded; the trainer runs it once"), 200: done},
            errors=(400, 404, 409, 413, 415),
            body={JSON: "RetrainBody"},
            summary="Ask for one training run of this pipeline (idempotent by id)",
            operator=True,
        )
    ]
