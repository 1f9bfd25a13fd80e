"""The Open Inference Protocol (KServe v2, as KServe and Triton speak it), REST binding.

A request carries either one tensor `input` of shape [N, n_features] (features in the order
model metadata lists under `parameters.feature_names`), or one tensor per feature, named for
it, of shape [N] or [N, 1]. Any numeric datatype is accepted and scored as float32, as JSON
`data` (flat or nested) or binary (`v2_tensors` says how each datatype converts). The answer
has one output, `prediction`, FP32, shape [N]: JSON `data`, or binary data after the JSON when
the request asks (`binary_data` on the output, or `binary_data_output`), with the JSON's length
in the `Inference-Header-Content-Length` response header. `id` and the request's `parameters`
come back in the answer. Errors are `{"error": "..."}` as the protocol says.
`.../versions/{version}/...` addresses the variant currently serving that version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from tradeloop.serving.context import Ctx
from tradeloop.serving.explain import Explanations, wants
from tradeloop.serving.gateway import Gateway, Scored, inline, off_loop, ok
from tradeloop.serving.http import JSON, ApiError, RawResponse, media_type, parse_json, read_body
from tradeloop.serving.models import Served
from tradeloop.serving.protocol import (
    Base,
    Call,
    DocContext,
    Example,
    Op,
    ProtocolOptions,
    Reply,
)
from tradeloop.serving.runtime import INPUT_NAME, OUTPUT_NAME
from tradeloop.serving.schemas_v2 import schemas
from tradeloop.serving.v2_tensors import NUMERIC, Binary, Tensors, flat_numbers, parse_infer
from tradeloop.serving.v2_tensors import bad as _bad

PLATFORM = "onnxruntime_onnx"
BINARY = "application/octet-stream"
HEADER_LENGTH = "inference-header-content-length"
EXTENSIONS = ["binary_tensor_data"]
_BINARY_BYTES = BINARY.encode()
_HEADER_LENGTH_BYTES = HEADER_LENGTH.encode()
__all__ = ["NUMERIC", "Binary", "V2Protocol", "factory", "flat_numbers", "parse_infer"]


def json_length(headers: dict[bytes, bytes]) -> int | None:
    """The JSON header's length of a binary request (None: the body is all JSON).

    JSON may come without a Content-Type, as tritonclient sends it and KServe and Triton take
    it; a binary request is `application/octet-stream` or, again, untyped.
    """
    mime, params = media_type(headers)
    raw = headers.get(HEADER_LENGTH.encode())
    if mime not in ("", JSON) and (raw is None or mime != BINARY):
        need = "with" if mime == BINARY else "or application/octet-stream with"
        raise ApiError(
            415,
            f"Content-Type must be application/json ({need} Inference-Header-Content-Length "
            f"for binary tensors), got {mime}",
        )
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ApiError(415, f"only UTF-8 is supported, got charset={charset}")
    if raw is None:
        return None
    text = raw.decode("latin-1")
    if not text.isdigit():
        raise _bad(f"Inference-Header-Content-Length is not a number: {text!r}")
    return int(text)


def split_body(raw: bytes, header: int | None) -> tuple[Any, Binary | None]:
    """The request's JSON document and its binary part."""
    if header is None:
        return parse_json(raw), None
    if header > len(raw):
        raise _bad(
            f"Inference-Header-Content-Length {header} is more than the body's {len(raw)} bytes"
        )
    return parse_json(raw[:header]), Binary(raw[header:])


def answer(
    doc: Any,
    tensors: Tensors,
    scored: Scored,
    model_name: str,
    explained: list[dict[str, Any]] | None = None,
) -> Response:
    """The response document; `prediction` as binary data after it when asked for, and the
    attributions per row in `parameters.explanations` when `parameters.explain` asked."""
    y = scored.predictions
    body: dict[str, Any] = {"model_name": model_name, "model_version": scored.served.version}
    if "id" in doc:
        body["id"] = doc["id"]
    if tensors.parameters:
        body["parameters"] = tensors.parameters
    if explained is not None:
        body["parameters"] = {**body.get("parameters", {}), "explanations": explained}
    out: dict[str, Any] = {"name": OUTPUT_NAME, "datatype": "FP32", "shape": [len(y)]}
    body["outputs"] = [out]
    if not tensors.binary_output:
        out["data"] = y.tolist()
        return ok(body)
    data = y.astype("<f4", copy=False).tobytes()
    out["parameters"] = {"binary_data_size": len(data)}
    head = orjson.dumps(body)
    length = str(len(head)).encode("latin-1")
    return RawResponse(head + data, _BINARY_BYTES, [(_HEADER_LENGTH_BYTES, length)])


NAME = "v2"


class V2Protocol(Base):
    name = NAME

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.explanations = Explanations(gw)

    def schemas(self, doc: DocContext) -> list[type[BaseModel]]:
        return schemas(doc.features)

    def hot_paths(self) -> Mapping[str, Mapping[str, str]]:
        return {"/v2/models/{name}/infer": {"name": self.gw.model_name}}

    def health_paths(self) -> list[str]:
        name = self.gw.model_name
        return ["/v2/health/live", "/v2/health/ready", f"/v2/models/{name}/ready"]

    def example(self, features: Sequence[str], row: Sequence[float]) -> Example:
        tensor = {"name": INPUT_NAME, "shape": [1, len(row)], "datatype": "FP32", "data": list(row)}
        given = dict(zip(features, row, strict=True))
        return Example(
            (Call("POST", f"/v2/models/{self.gw.model_name}/infer", {"inputs": [tensor]}),),
            lambda answer: (given, float(answer["outputs"][0]["data"][0])),
        )

    def operations(self) -> list[Op]:
        gw, explanations = self.gw, self.explanations
        limit = gw.serving.max_body_bytes

        def check_model(request: Request) -> None:
            name = request.path_params["name"]
            if name != gw.model_name:
                raise ApiError(
                    404, f"unknown model {name!r}; this gateway serves {gw.model_name!r}"
                )

        def variant_for(request: Request) -> Served | None:
            """The served variant a `/versions/{version}` path names (None without one)."""
            check_model(request)
            version = request.path_params.get("version")
            if version is None:
                return None
            for s in gw.snapshot.served.values():
                if s.version == version:
                    return s
            raise ApiError(404, f"version {version!r} of {gw.model_name!r} is not being served")

        async def server_live(request: Request, ctx: Ctx) -> Response:
            return ok({"live": True})

        async def server_ready(request: Request, ctx: Ctx) -> Response:
            ready = gw.snapshot.ready
            return ok({"ready": ready}, 200 if ready else 503)

        async def server_metadata(request: Request, ctx: Ctx) -> Response:
            from importlib.metadata import version

            return ok(
                {"name": "tradeloop", "version": version("tradeloop"), "extensions": EXTENSIONS}
            )

        async def model_metadata(request: Request, ctx: Ctx) -> Response:
            served = variant_for(request)
            snap = gw.snapshot
            served = served or snap.primary
            if served is None:
                raise ApiError(503, f"no version of {gw.model_name!r} is loaded yet")
            names = list(served.model.feature_names)
            versions = sorted({s.version for s in snap.served.values()})
            return ok(
                {
                    "name": gw.model_name,
                    "versions": versions,
                    "platform": PLATFORM,
                    "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, len(names)]}],
                    "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1]}],
                    "parameters": {
                        "feature_names": names,
                        "version": served.version,
                        "variant": served.variant,
                    },
                }
            )

        async def model_ready(request: Request, ctx: Ctx) -> Response:
            served = variant_for(request)
            ready = served.current if served is not None else gw.snapshot.ready
            return ok({"name": gw.model_name, "ready": ready}, 200 if ready else 503)

        async def infer(request: Request, ctx: Ctx) -> Response:
            override = await gw.authorize_predict(ctx)
            served = variant_for(request)
            if served is not None:
                await gw.authorize_pinned(ctx, served)
                override = served.variant
            header = json_length(ctx.headers)
            raw = await read_body(request, ctx.headers, limit)
            key = gw.key(ctx)

            route = "/v2/models/{name}/infer"

            def parse() -> tuple[Any, Tensors, bool]:
                doc, binary = split_body(raw, header)
                tensors = parse_infer(doc, binary, OUTPUT_NAME)  # first: checks doc is a dict
                explain = wants(doc.get("parameters", {}).get("explain"), "parameters.explain")
                return doc, tensors, explain

            def reply(doc: Any, tensors: Tensors, scored: Scored, explain: bool) -> Response:
                explained = explanations.rows(scored) if explain else None
                return answer(doc, tensors, scored, gw.model_name, explained)

            def work() -> Response:
                doc, tensors, explain = parse()
                scored = gw.score(tensors.rows, ctx, route=route, key=key, override=override)
                return reply(doc, tensors, scored, explain)

            if gw.batcher is None or not inline(len(raw)):
                return await off_loop(work, len(raw))
            doc, tensors, explain = parse()
            scored = await gw.score_async(
                tensors.rows, ctx, route=route, key=key, override=override
            )
            return reply(doc, tensors, scored, explain)

            if gw.batcher is None or not inline(len(raw)):
                return await off_loop(work, len(raw))
            doc, binary = split_body(raw, header)
            tensors = parse_infer(doc, binary, OUTPUT_NAME)
            explain = wants(doc.get("parameters", {}).get("explain"), "parameters.explain")
            scored = await gw.score_async(
                tensors.rows, ctx, route=route, key=key, override=override
            )
            explained = explanations.rows(scored) if explain else None
            return answer(doc, tensors, scored, gw.model_name, explained)

        ready, not_ready = Reply("Ready", "Ready"), Reply("Ready", "Not ready")
        ops = [
            Op(
                "GET",
                "/v2",
                server_metadata,
                "v2_server_metadata",
                {200: Reply("ServerMetadata", "Server metadata")},
            ),
            Op("GET", "/v2/health/live", server_live, "v2_live", {200: Reply("Live", "Live")}),
            Op("GET", "/v2/health/ready", server_ready, "v2_ready", {200: ready, 503: not_ready}),
        ]
        for suffix in ("", "/versions/{version}"):
            base, op = f"/v2/models/{{name}}{suffix}", "_version" if suffix else ""
            ops += [
                Op(
                    "GET",
                    base,
                    model_metadata,
                    f"v2_model_metadata{op}",
                    {200: Reply("ModelMetadata", "Model metadata")},
                    (404, 503),
                ),
                Op(
                    "GET",
                    base + "/ready",
                    model_ready,
                    f"v2_model_ready{op}",
                    {200: Reply("ModelReady", "Ready"), 503: Reply("ModelReady", "Not ready")},
                    (404,),
                ),
                Op(
                    "POST",
                    base + "/infer",
                    infer,
                    f"v2_infer{op}",
                    {200: Reply("InferResponse", "Predictions as the tensor 'prediction'")},
                    (400, 404, 409, 413, 415, 503),
                    {JSON: "InferRequest"},
                    predict=True,
                ),
            ]
        return [dataclasses.replace(o, style="v2") for o in ops]


def factory(gw: Gateway, options: ProtocolOptions) -> V2Protocol:
    return V2Protocol(gw)
