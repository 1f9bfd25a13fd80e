"""`inference.GRPCInferenceService` over the gateway: the same models, routing, auth and logs.

Each RPC is a thin translation onto `Gateway`: metadata becomes the `Ctx` headers (so
`authorization: Bearer`, `x-tradeloop-variant`, `x-request-id` and the sticky-key header work
as over HTTP), ModelInfer goes through `Gateway.score` (routing, shadow, prediction log), and
every call is counted in the same request metrics, labelled with its gRPC method path and the
HTTP-equivalent status so dashboards and rollout analysis see one population.
`ApiError`s become gRPC status codes; the details are the same messages REST sends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import grpc

from tradeloop.serving.context import Ctx
from tradeloop.serving.gateway import Gateway, off_loop
from tradeloop.serving.grpc.stubs import SERVICE, Stubs, load
from tradeloop.serving.grpc.tensors import fill_response, request_rows
from tradeloop.serving.http import ApiError
from tradeloop.serving.models import Served
from tradeloop.serving.runtime import INPUT_NAME, OUTPUT_NAME

log = logging.getLogger(__name__)

PLATFORM = "onnxruntime_onnx"
INFER_ROUTE = f"/{SERVICE}/ModelInfer"

# HTTP status (what ApiError carries) -> gRPC status code
STATUS_CODES: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}

Rpc = Callable[[Any, Ctx], Awaitable[Any]]


def grpc_code(status: int) -> grpc.StatusCode:
    return STATUS_CODES.get(status, grpc.StatusCode.INTERNAL)


def _server_version() -> str:
    try:
        return version("tradeloop")
    except PackageNotFoundError:
        return "0"


class InferenceService:
    """The six RPCs; `handler()` is what a grpc server registers."""

    def __init__(self, gw: Gateway, stubs: Stubs | None = None) -> None:
        self.gw = gw
        self.stubs = stubs or load()
        self.server_version = _server_version()

    # ------------------------------------------------------------------ lookups

    def _check_model(self, name: str) -> None:
        if name != self.gw.model_name:
            given = f"unknown model {name!r}" if name else "no model name given"
            raise ApiError(404, f"{given}; this gateway serves {self.gw.model_name!r}")

    def _variant(self, name: str, version: str) -> Served | None:
        """The served variant `version` names (None when no version is given)."""
        self._check_model(name)
        if not version:
            return None
        for s in self.gw.snapshot.served.values():
            if s.version == version:
                return s
        raise ApiError(404, f"version {version!r} of {self.gw.model_name!r} is not being served")

    # ------------------------------------------------------------------ the RPCs

    async def server_live(self, request: Any, ctx: Ctx) -> Any:
        return self.stubs["ServerLiveResponse"](live=True)

    async def server_ready(self, request: Any, ctx: Ctx) -> Any:
        return self.stubs["ServerReadyResponse"](ready=self.gw.snapshot.ready)

    async def server_metadata(self, request: Any, ctx: Ctx) -> Any:
        return self.stubs["ServerMetadataResponse"](name="tradeloop", version=self.server_version)

    async def model_ready(self, request: Any, ctx: Ctx) -> Any:
        served = self._variant(request.name, request.version)
        ready = served.current if served is not None else self.gw.snapshot.ready
        return self.stubs["ModelReadyResponse"](ready=ready)

    async def model_metadata(self, request: Any, ctx: Ctx) -> Any:
        snap = self.gw.snapshot
        served = self._variant(request.name, request.version) or snap.primary
        if served is None:
            raise ApiError(503, f"no version of {self.gw.model_name!r} is loaded yet")
        reply = self.stubs["ModelMetadataResponse"](
            name=self.gw.model_name,
            versions=sorted({s.version for s in snap.served.values()}),
            platform=PLATFORM,
        )
        reply.inputs.add(
            name=INPUT_NAME, datatype="FP32", shape=[-1, len(served.model.feature_names)]
        )
        reply.outputs.add(name=OUTPUT_NAME, datatype="FP32", shape=[-1])
        return reply

    async def model_infer(self, request: Any, ctx: Ctx) -> Any:
        gw = self.gw
        override = await gw.authorize_predict(ctx)
        served = self._variant(request.model_name, request.model_version)
        if served is not None:
            override = served.variant
        key = gw.key(ctx)
        raws = request.raw_input_contents

        def work() -> Any:
            scored = gw.score(
                request_rows(request), ctx, route=INFER_ROUTE, key=key, override=override
            )
            reply = self.stubs["ModelInferResponse"](
                model_name=gw.model_name, model_version=scored.served.version, id=request.id
            )
            fill_response(reply, scored.predictions, raw=bool(raws))
            return reply

        size = sum(len(r) for r in raws) if raws else request.ByteSize()
        return await off_loop(work, size)

    # ------------------------------------------------------------------ wiring

    def _wrap(
        self, path: str, rpc: Rpc
    ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        """Per call: the Ctx from metadata, the request id, error mapping and the metrics."""
        gw, metrics, model_name = self.gw, self.gw.metrics, self.gw.model_name

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            ctx = Ctx(
                {
                    m.key.encode("latin-1"): m.value.encode("latin-1")
                    for m in context.invocation_metadata() or ()
                    if isinstance(m.value, str)
                }
            )
            ctx.request_id = gw.request_id(ctx)
            status, failure = 200, None
            try:
                reply = await rpc(request, ctx)
            except ApiError as exc:
                status, failure = exc.status, exc
            except Exception:
                log.exception("unhandled error on %s", path)
                status, failure = 500, ApiError(500, "internal error; see the gateway log")
            trailing = [("x-request-id", ctx.request_id)]
            if ctx.variant:
                trailing += [
                    ("x-tradeloop-variant", ctx.variant),
                    ("x-tradeloop-model-version", ctx.version),
                ]
            metrics.observe_request(
                path, model_name, ctx.version, ctx.variant, status, time.perf_counter() - ctx.t0
            )
            if failure is not None:
                await context.abort(grpc_code(failure.status), failure.message, tuple(trailing))
            context.set_trailing_metadata(tuple(trailing))
            return reply

        return call

    def handler(self) -> grpc.GenericRpcHandler:
        rpcs: dict[str, Rpc] = {
            "ServerLive": self.server_live,
            "ServerReady": self.server_ready,
            "ServerMetadata": self.server_metadata,
            "ModelReady": self.model_ready,
            "ModelMetadata": self.model_metadata,
            "ModelInfer": self.model_infer,
        }
        missing = set(self.stubs.methods) ^ set(rpcs)
        if missing:  # the .proto and this table drifted apart
            raise RuntimeError(f"GRPCInferenceService methods without a handler: {sorted(missing)}")
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                self._wrap(m.path, rpcs[name]),
                request_deserializer=m.request.FromString,
                response_serializer=m.response.SerializeToString,
            )
            for name, m in self.stubs.methods.items()
        }
        return grpc.method_handlers_generic_handler(SERVICE, handlers)
