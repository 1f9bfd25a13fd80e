"""The request path every protocol shares: authorize, route, score, log, measure.

Protocols only translate their envelopes to `Rows` and results back; `Gateway.score` is the
one place that reads the snapshot, picks a variant, runs the model, hands the copy to shadow
variants and queues the prediction-log record, so every protocol behaves the same.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from itertools import count
from typing import NamedTuple, TypeVar

import numpy as np
from anyio import to_thread
from starlette.requests import Request
from starlette.responses import Response

from tradeloop.clock import Clock
from tradeloop.observability import tracing
from tradeloop.serving.auth import Auth
from tradeloop.serving.batching import MicroBatcher
from tradeloop.serving.context import Ctx
from tradeloop.serving.error_log import is_store_error, store_unavailable
from tradeloop.serving.http import ApiError, BodyReceiver, JSONResponse, drain, error_response
from tradeloop.serving.inputs import Rows, matrix_for
from tradeloop.serving.metrics import GatewayMetrics
from tradeloop.serving.models import ModelManager, Served, Snapshot
from tradeloop.serving.predlog import PredictionLog, PredictionRecord
from tradeloop.serving.router import NoModel, Router, UnknownVariant
from tradeloop.serving.runtime import LoadedModel
from tradeloop.serving.shadow import ShadowScorer
from tradeloop.serving.telemetry import RequestTelemetry
from tradeloop.spec import ServingSpec

log = logging.getLogger(__name__)
T = TypeVar("T")

VARIANT_HEADER = "x-tradeloop-variant"
KEY_HEADER = "x-tradeloop-key"
REQUEST_ID_HEADER = "x-request-id"

__all__ = ["Ctx", "Gateway", "Handler", "Scored", "inline", "off_loop", "ok"]


class Scored(NamedTuple):
    served: Served
    predictions: np.ndarray  # [N] float32
    features: np.ndarray  # [N, n_features] float32, the model's order


Handler = Callable[[Request, Ctx], Awaitable[Response]]


class _Job(NamedTuple):
    """A routed, validated request between `_prepare` and `_finish` (the model run between)."""

    snap: Snapshot
    served: Served
    model: LoadedModel
    rows: Rows
    x: np.ndarray
    flags: np.ndarray | None
    known: frozenset[str] | None
    ctx: Ctx
    route: str
    key: str | None
    override: str | None


class Gateway:
    def __init__(
        self,
        *,
        model_name: str,
        manager: ModelManager,
        router: Router,
        predlog: PredictionLog,
        shadow: ShadowScorer,
        metrics: GatewayMetrics,
        auth: Auth,
        clock: Clock,
        serving: ServingSpec,
    ) -> None:
        self.model_name = model_name
        self.manager = manager
        self.router = router
        self.predlog = predlog
        self.shadow = shadow
        self.metrics = metrics
        self.auth = auth
        self.clock = clock
        self.serving = serving
        self.errors = auth.errors
        self.telemetry = RequestTelemetry(model_name, serving)
        # label children made once (at 0, so the series exist before the first anomaly)
        self._rows_checked = metrics.input_rows.labels(model_name)
        self._rows_out_of_range = metrics.input_out_of_range.labels(model_name)
        self._ids = count(1)
        self._id_prefix = os.urandom(4).hex() + "-"
        self.batcher: MicroBatcher | None = None
        if serving.batching is not None:
            self.batcher = MicroBatcher(serving.batching, metrics.batch_size.observe)

    @property
    def snapshot(self) -> Snapshot:
        return self.manager.snapshot

    # ------------------------------------------------------------------ request helpers

    def request_id(self, ctx: Ctx) -> str:
        given = ctx.header(REQUEST_ID_HEADER)
        if given and len(given) <= 128 and given.isprintable():
            return given
        return f"{self._id_prefix}{next(self._ids):x}"

    def key(self, ctx: Ctx, symbol: str | None = None) -> str | None:
        """The sticky key: the symbol, or the header `sticky_key` names (see ServingSpec);
        `X-Tradeloop-Key` otherwise. None: a random split per request."""
        if self.serving.sticky_key != "symbol":
            named = ctx.header(self.serving.sticky_key.lower())
            if named:
                return named
        return symbol or ctx.header(KEY_HEADER)

    async def authorize_predict(self, ctx: Ctx) -> str | None:
        """Check the token when required; return the variant override, if one may be used.

        `X-Tradeloop-Variant` forces a variant (tests, debugging a challenger). It always needs
        an operator token, even with prediction tokens off: it bypasses the rollout's traffic
        split, so an anonymous caller could put an unapproved challenger on live orders.
        """
        override = ctx.header(VARIANT_HEADER)
        if override:
            await self.auth.require(ctx, "operator")
        elif self.serving.require_token:
            await self.auth.require(ctx, "predictor")
        return override or None

    async def authorize_pinned(self, ctx: Ctx, served: Served) -> None:
        """A route that names a version (`/v2/models/{m}/versions/{v}/infer`) bypasses the
        traffic split like the variant header does, so with tokens on anything but the main
        live variant (most weight, the champion on a tie: the champion, or the challenger once
        a blue-green switch gave it all traffic) needs what the header needs: operator."""
        if not self.serving.require_token:
            return
        live = [s for s in self.snapshot.live if s.deployed.weight > 0]
        main = max(live, key=lambda s: (s.deployed.weight, s.variant == "champion"), default=None)
        if main is not None and served.variant == main.variant:
            return
        try:
            await self.auth.require(ctx, "operator")
        except ApiError as exc:
            if exc.status != 403:
                raise
            raise ApiError(
                403,
                f"version {served.version} is the {served.deployed.mode} {served.variant}; "
                f"reaching it by version needs an operator token, as {VARIANT_HEADER} does "
                f"({exc.message})",
            ) from exc

    async def authorize_feed(self, ctx: Ctx) -> None:
        """`POST /v1/bars` with tokens on: `serving.bars_role` (predictor, or its own feeder)."""
        if self.serving.require_token:
            await self.auth.require(ctx, self.serving.bars_role)

    # ------------------------------------------------------------------ scoring

    def score(
        self,
        rows: Rows,
        ctx: Ctx,
        *,
        route: str,
        key: str | None,
        override: str | None = None,
        snapshot: Snapshot | None = None,
        allow_extra: bool = False,
    ) -> Scored:
        job = self._prepare(rows, ctx, route, key, override, snapshot, allow_extra)
        if not tracing.recording():  # off, or this request's trace not sampled
            return self._finish(job, job.model.predict(job.x), "")
        with tracing.span(
            "model.run", **{"tradeloop.version": job.model.version, "rows": len(job.x)}
        ):
            y = job.model.predict(job.x)
        return self._finish(job, y, tracing.current_trace_id())

    async def score_async(
        self,
        rows: Rows,
        ctx: Ctx,
        *,
        route: str,
        key: str | None,
        override: str | None = None,
    ) -> Scored:
        """`score`, with the model run through the micro-batcher when `serving.batching` is
        on (see `serving.batching`); call it on the event loop with a small request."""
        batcher = self.batcher
        if batcher is None:
            return self.score(rows, ctx, route=route, key=key, override=override)
        job = self._prepare(rows, ctx, route, key, override, None, False)
        expected, ctx.expected = ctx.expected, False
        y = await batcher.predict(job.model, job.x, expected)
        return self._finish(job, y, "")

    def _prepare(
        self,
        rows: Rows,
        ctx: Ctx,
        route: str,
        key: str | None,
        override: str | None,
        snapshot: Snapshot | None,
        allow_extra: bool,
    ) -> _Job:
        snap = snapshot if snapshot is not None else self.manager.snapshot
        try:
            served = self.router.route(snap, key, override)
        except NoModel as exc:
            raise ApiError(503, str(exc)) from exc
        except UnknownVariant as exc:
            raise ApiError(400, str(exc)) from exc
        model = served.model
        ctx.variant, ctx.version = served.variant, model.version
        known = None if allow_extra else snap.known_features
        x = matrix_for(rows, model.feature_names, known)
        flags = self._check_inputs(model, x)
        return _Job(snap, served, model, rows, x, flags, known, ctx, route, key, override)

    def _finish(self, job: _Job, y: np.ndarray, trace_id: str) -> Scored:
        model, served, ctx, x = job.model, job.served, job.ctx, job.x
        ts = self.clock.now()
        # a forced variant (header or version route) answered outside the traffic split: its
        # records stay out of live performance and the rollout's experiment
        mode = "live" if job.override is None else "forced"
        self.metrics.observe_predictions(self.model_name, model.version, served.variant, mode, y)
        log_key = job.key or ctx.request_id
        self.predlog.log(
            PredictionRecord(
                ts,
                ctx.request_id,
                log_key,
                job.route,
                self.model_name,
                model.version,
                served.variant,
                mode,
                model.feature_names,
                x,
                y,
                (time.perf_counter() - ctx.t0) * 1000.0,
                trace_id,
                job.flags,
            )
        )
        shadows = [s for s in job.snap.shadow if s is not served]
        if shadows:
            self._shadow(
                shadows,
                job.rows,
                x,
                model.feature_names,
                job.known,
                ts,
                ctx.request_id,
                log_key,
                job.route,
            )
        return Scored(served, y, x)

    def _check_inputs(self, model: LoadedModel, x: np.ndarray) -> np.ndarray | None:
        """Per-row out-of-range flags (None: the model has no reference profile); a 422 for
        rows beyond `serving.refuse_beyond` std devs (see `serving.anomaly`)."""
        bounds = model.bounds
        if bounds is None:
            return None
        self._rows_checked.inc(len(x))
        flags = bounds.outside(x)
        if flags is None:
            return np.zeros(len(x), bool)
        self._rows_out_of_range.inc(int(flags.sum()))
        limit = self.serving.refuse_beyond
        if limit is not None:
            d = bounds.distance(x)
            if bool((d > limit).any()):
                raise ApiError(422, bounds.describe(d, limit))
        return flags

    def _shadow(
        self,
        shadows: list[Served],
        rows: Rows,
        x: np.ndarray,
        names: tuple[str, ...],
        known: frozenset[str] | None,
        ts: datetime,
        request_id: str,
        key: str,
        route: str,
    ) -> None:
        parent = tracing.parent_context()  # the shadow span joins this request's trace
        same = [s for s in shadows if s.model.feature_names == names]
        if same:
            self.shadow.submit(same, x, ts, request_id, key, route, parent)
        for s in shadows:
            if s.model.feature_names == names:
                continue
            try:
                xs = matrix_for(rows, s.model.feature_names, known)
            except ApiError:  # the request lacks a feature only the shadow uses
                self.metrics.shadow_errors.inc()
                continue
            self.shadow.submit([s], xs, ts, request_id, key, route, parent)

    # ------------------------------------------------------------------ endpoint wrapper

    def endpoint(
        self, route: str, handler: Handler, style: str = "mlflow", *, predict: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler: request id, error rendering, and the request metrics, once."""
        metrics, model_name = self.metrics, self.model_name
        telemetry = self.telemetry
        batcher = self.batcher if predict else None

        async def run(request: Request) -> Response:
            receiver = BodyReceiver(request.receive)
            request = Request(request.scope, receiver)
            ctx = Ctx(dict(request.scope["headers"]))
            ctx.request_id = self.request_id(ctx)
            tel = telemetry.begin(route, request.method, ctx)
            if batcher is not None:
                batcher.expect()
                ctx.expected = True
            try:
                response = await handler(request, ctx)
            except ApiError as exc:
                response = error_response(exc, style)
            except Exception as exc:
                if is_store_error(exc):  # the database is away: 503 with the reason
                    self.errors.report(route, exc, f"store error on {route}")
                    response = error_response(store_unavailable(exc, f"serving {route}"), style)
                else:  # a bug: answer 500 in the protocol's shape, and say so in the log (once)
                    self.errors.report(route, exc, f"unhandled error on {route}")
                    response = error_response(
                        ApiError(500, "internal error; see the gateway log"), style
                    )
            finally:
                if ctx.expected and batcher is not None:  # left without joining a batch
                    ctx.expected = False
                    batcher.gone()
            extra = response.raw_headers
            if not receiver.done and not await drain(receiver, ctx.headers):
                extra.append((b"connection", b"close"))
            extra.append((b"x-request-id", ctx.request_id.encode("latin-1")))
            if ctx.variant:
                extra.append((b"x-tradeloop-variant", ctx.variant.encode()))
                extra.append((b"x-tradeloop-model-version", ctx.version.encode("latin-1")))
            seconds = time.perf_counter() - ctx.t0
            metrics.observe_request(
                route, model_name, ctx.version, ctx.variant, response.status_code, seconds
            )
            if tel is not None:
                extra += telemetry.finish(tel, route, ctx, response.status_code, seconds)
            return response

        return run


OFF_LOOP_BYTES = 64 * 1024


def inline(body_bytes: int) -> bool:
    """Whether a request this big is parsed and scored on the event loop (see `off_loop`)."""
    return body_bytes <= OFF_LOOP_BYTES


async def off_loop(work: Callable[[], T], body_bytes: int) -> T:
    """Run parse-and-score inline for small bodies (a thread hop costs more than the work),
    in a worker thread for big ones, so one large batch does not stall every other request."""
    if body_bytes <= OFF_LOOP_BYTES:
        return work()
    return await to_thread.run_sync(work)


def ok(content: object, status: int = 200) -> JSONResponse:
    return JSONResponse(content, status_code=status)
