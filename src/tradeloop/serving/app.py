"""The Starlette application: the protocols' routes, operational endpoints, and lifecycle.

Startup loads what is deployed and starts the background threads (deployment polling, the
prediction-log writer, the shadow scorer); shutdown stops polling, scores what shadow work is
queued, then flushes the prediction log, so a graceful stop loses no record.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tradeloop.serving import protocol_mlflow, protocol_trading, protocol_v2
from tradeloop.serving.context import Ctx
from tradeloop.serving.gateway import Gateway, ok
from tradeloop.serving.hot_routes import GatewayApp, hot_routes
from tradeloop.serving.http import ApiError, JSONResponse, error_body
from tradeloop.serving.metrics import CONTENT_TYPE
from tradeloop.serving.openapi import openapi_document
from tradeloop.serving.protocol_trading import TradingState
from tradeloop.spec import BacktestSpec

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("tradeloop")
    except PackageNotFoundError:
        return "0"


def status(gw: Gateway) -> dict[str, Any]:
    snap = gw.snapshot
    variants = []
    for d in snap.deployed:
        served = snap.served.get(d.variant)
        variants.append(
            {
                "variant": d.variant,
                "mode": d.mode,
                "weight": d.weight,
                "deployed_version": d.version,
                "serving_version": served.version if served else None,
                "loaded": bool(served and served.current),
                "error": snap.errors.get(d.variant),
            }
        )
    return {"ready": snap.ready, "model": gw.model_name, "variants": variants}


def create_app(
    gw: Gateway,
    *,
    backtest: BacktestSpec,
    trading: TradingState | None = None,
    trading_state_file: Path | None = None,
) -> Starlette:
    app_version = _version()

    async def healthz(request: Request, ctx: Ctx) -> Response:
        return ok({"status": "ok"})

    async def readyz(request: Request, ctx: Ctx) -> Response:
        body = status(gw)
        return ok(body, 200 if body["ready"] else 503)

    async def metrics(request: Request, ctx: Ctx) -> Response:
        return Response(gw.metrics.exposition(), media_type=CONTENT_TYPE)

    async def openapi(request: Request, ctx: Ctx) -> Response:
        primary = gw.snapshot.primary
        doc = openapi_document(
            model_name=gw.model_name,
            features=list(primary.model.feature_names) if primary else [],
            versions=sorted({s.version for s in gw.snapshot.served.values()}),
            trading=trading is not None,
            require_token=gw.serving.require_token,
            version=app_version,
        )
        return ok(doc)

    async def reload(request: Request, ctx: Ctx) -> Response:
        await gw.auth.require(ctx, "operator")  # always: it acts on the server
        from anyio import to_thread

        await to_thread.run_sync(gw.manager.refresh)
        return ok(status(gw))

    routes: list[Route] = [
        *protocol_mlflow.routes(gw),
        *protocol_v2.routes(gw),
        *(protocol_trading.routes(gw, trading, backtest) if trading is not None else []),
        Route("/healthz", gw.endpoint("/healthz", healthz), methods=["GET"]),
        Route("/readyz", gw.endpoint("/readyz", readyz), methods=["GET"]),
        Route("/metrics", gw.endpoint("/metrics", metrics), methods=["GET"]),
        Route("/openapi.json", gw.endpoint("/openapi.json", openapi), methods=["GET"]),
        Route("/admin/reload", gw.endpoint("/admin/reload", reload), methods=["POST"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        """Unmatched paths and methods, in the protocol's error shape."""
        assert isinstance(exc, HTTPException)
        style = "v2" if request.url.path.startswith("/v2") else "mlflow"
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        elif exc.status_code == 404:
            message = f"no route {request.url.path}"
        else:
            message = exc.detail
        err = ApiError(exc.status_code, message, headers=dict(exc.headers or {}))
        gw.metrics.observe_request("<unmatched>", gw.model_name, "", "", exc.status_code, 0.0)
        return JSONResponse(
            error_body(err, style), status_code=exc.status_code, headers=err.headers
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gw.predlog.start()
        gw.shadow.start()
        if trading is not None and trading_state_file is not None:
            trading.load(trading_state_file)
        gw.manager.start()
        if getattr(app.state, "freeze_gc", False):
            # Everything alive now (modules, models) lives as long as the process. Freezing it
            # keeps the collector from rescanning it: a full collection of the whole heap
            # otherwise stalls the event loop for ~100 ms once every few seconds under load.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            gw.manager.stop()
            gw.shadow.close()
            gw.predlog.close()
            if trading is not None and trading_state_file is not None:
                try:
                    trading.save(trading_state_file)
                except OSError:
                    log.exception("could not save the online-feature state")

    hot = hot_routes(
        routes,
        {
            "/invocations": {},
            "/v2/models/{name}/infer": {"name": gw.model_name},
            "/v1/bars": {},
            "/v1/signals/{symbol}": {},
        },
    )
    app = GatewayApp(
        hot=hot, routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.gateway = gw
    app.state.trading = trading
    return app
