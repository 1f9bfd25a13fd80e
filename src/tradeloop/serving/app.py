"""The Starlette application: the protocols' routes, operational endpoints, and lifecycle.

One route table (`Op`s) makes the Starlette routes, the fast path and the OpenAPI document.

Startup loads what is deployed and starts the background threads (deployment polling, the
prediction-log writer, the shadow scorer); shutdown stops polling, scores what shadow work is
queued, then flushes the prediction log, so a graceful stop loses no record.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from tradeloop.serving.context import Ctx
from tradeloop.serving.gateway import Gateway, ok
from tradeloop.serving.hot_routes import GatewayApp, hot_routes
from tradeloop.serving.http import ApiError, JSONResponse, discard_body, error_body
from tradeloop.serving.metrics import CONTENT_TYPE
from tradeloop.serving.openapi import Open, openapi_document
from tradeloop.serving.protocol import DocContext, Op, Reply, ServingProtocol
from tradeloop.serving.retrain import RetrainBody, RetrainRecorded, retrain_ops

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("tradeloop")
    except PackageNotFoundError:
        return "0"


def status(gw: Gateway) -> dict[str, Any]:
    return gw.snapshot.report()


class Healthz(Open):
    status: str


class Status(Open):
    ready: bool
    degraded: bool
    state: str
    model: str
    variants: list[dict[str, Any]]


class Document(Open):
    """This OpenAPI document."""


def operational(gw: Gateway, document: Callable[[], dict[str, Any]]) -> list[Op]:
    """Health, readiness, metrics, this document and the admin reload: every gateway has them
    (with `retrain_ops`, the retraining request)."""

    async def healthz(request: Request, ctx: Ctx) -> Response:
        return ok({"status": "ok"})

    async def readyz(request: Request, ctx: Ctx) -> Response:
        body = status(gw)  # degraded (last good versions answering) still takes traffic
        return ok(body, 200 if body["ready"] or body["degraded"] else 503)

    async def metrics(request: Request, ctx: Ctx) -> Response:
        return Response(gw.metrics.exposition(), media_type=CONTENT_TYPE)

    async def openapi(request: Request, ctx: Ctx) -> Response:
        return ok(document())

    async def reload(request: Request, ctx: Ctx) -> Response:
        await gw.auth.require(ctx, "operator")  # always: it acts on the server
        from anyio import to_thread

        await to_thread.run_sync(gw.manager.refresh)
        return ok(status(gw))

    state = Reply("Status", "Every deployed variant answers (state says if degraded)")
    return [
        Op("GET", "/healthz", healthz, "healthz", {200: Reply("Healthz", "The process is up")}),
        Op("GET", "/readyz", readyz, "readyz", {200: state, 503: Reply("Status", "Not ready")}),
        Op(
            "GET",
            "/metrics",
            metrics,
            "metrics",
            {200: Reply(None, "Prometheus text format", "text/plain")},
        ),
        Op("GET", "/openapi.json", openapi, "openapi", {200: Reply("Document", "This document")}),
        Op(
            "POST",
            "/admin/reload",
            reload,
            "admin_reload",
            {200: Reply("Status", "State after the reload")},
            summary="Re-read deployment state now",
            operator=True,
        ),
    ]


class Listener(Protocol):
    """Another server on the app's event loop sharing its gateway (the gRPC one)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def create_app(
    gw: Gateway, protocols: Sequence[ServingProtocol], listeners: Sequence[Listener] = ()
) -> Starlette:
    """The app speaking `protocols` (see `tradeloop.serving.protocol`) plus `operational`;
    `listeners` start after the models load and stop before the logs flush."""
    app_version = _version()

    def document() -> dict[str, Any]:
        snap = gw.snapshot
        primary = snap.primary
        doc = DocContext(
            model_name=gw.model_name,
            features=tuple(primary.model.feature_names) if primary else (),
            versions=tuple(sorted({s.version for s in snap.served.values()})),
            require_token=gw.serving.require_token,
        )
        models = [m for p in protocols for m in p.schemas(doc)]
        return openapi_document(
            ops,
            [*models, Healthz, Status, Document, RetrainBody, RetrainRecorded],
            doc,
            version=app_version,
        )

    ops = (
        [op for p in protocols for op in p.operations()]
        + operational(gw, document)
        + retrain_ops(gw)
    )
    routes = [op.route(gw) for op in ops]
    v2_prefixes = tuple({"/" + op.path.split("/")[1] for op in ops if op.style == "v2"})

    async def http_error(request: Request, exc: Exception) -> Response:
        """Unmatched paths and methods, in the protocol's error shape."""
        assert isinstance(exc, HTTPException)
        style = "v2" if request.url.path.startswith(v2_prefixes) else "mlflow"
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        elif exc.status_code == 404:
            message = f"no route {request.url.path}"
        else:
            message = exc.detail
        err = ApiError(exc.status_code, message, headers=dict(exc.headers or {}))
        if not await discard_body(request):
            err.headers = {**(err.headers or {}), "connection": "close"}
        gw.metrics.observe_request("<unmatched>", gw.model_name, "", "", exc.status_code, 0.0)
        return JSONResponse(
            error_body(err, style), status_code=exc.status_code, headers=err.headers
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gw.predlog.start()
        gw.shadow.start()
        for p in protocols:
            p.start()
        gw.manager.start()
        started: list[Listener] = []
        try:
            for listener in listeners:
                await listener.start()
                started.append(listener)
            if getattr(app.state, "freeze_gc", False):
                # Everything alive now (modules, models) lives as long as the process. Freezing
                # it keeps the collector from rescanning it: a full collection of the whole heap
                # otherwise stalls the event loop for ~100 ms once every few seconds under load.
                gc.collect()
                gc.freeze()
            yield
        finally:
            for listener in reversed(started):
                await listener.stop()
            gw.manager.stop()
            gw.shadow.close()
            gw.predlog.close()
            for p in protocols:
                p.stop()

    hot = hot_routes(
        routes, {path: fixed for p in protocols for path, fixed in p.hot_paths().items()}
    )
    app = GatewayApp(
        hot=hot, routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.gateway = gw
    app.state.protocols = {p.name: p for p in protocols}
    return app
