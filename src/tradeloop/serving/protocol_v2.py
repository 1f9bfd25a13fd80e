"""The Open Inference Protocol (KServe v2, as KServe and Triton speak it), REST binding.

A request carries either one tensor `input` of shape [N, n_features] (features in the order
model metadata lists under `parameters.feature_names`), or one tensor per feature, named for
it, of shape [N] or [N, 1]. Any numeric datatype is accepted and scored as float32; `data` may
be flat (row-major) or nested. The answer has one output, `prediction`, FP32, shape [N].
Errors are `{"error": "..."}` as the protocol says. `.../versions/{version}/...` addresses the
variant currently serving that version.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from math import prod
from typing import Any

import numpy as np
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from tradeloop.serving.context import Ctx
from tradeloop.serving.explain import Explanations, wants
from tradeloop.serving.gateway import Gateway, Scored, off_loop, ok
from tradeloop.serving.http import ApiError, parse_json, read_body, require_json
from tradeloop.serving.inputs import Rows, check_unique, to_float32
from tradeloop.serving.models import Served
from tradeloop.serving.protocol import (
    JSON,
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

NUMERIC = frozenset(
    {
        "FP16",
        "FP32",
        "FP64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
    }
)
PLATFORM = "onnxruntime_onnx"
_MAX_DEPTH = 32


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def flat_numbers(data: Any, what: str) -> list[float | int]:
    """Flat or nested lists of numbers to one flat list (row-major), refusing anything else."""
    if not isinstance(data, list):
        raise _bad(f"{what} must be an array of numbers")
    if all(type(v) is float or type(v) is int for v in data):
        return data
    out: list[float | int] = []

    def walk(node: list[Any], depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise _bad(f"{what} is nested too deeply")
        for v in node:
            t = type(v)
            if t is float or t is int:
                out.append(v)
            elif t is list:
                walk(v, depth + 1)
            else:
                kind = (
                    "null"
                    if v is None
                    else {bool: "boolean", str: "string", dict: "object"}.get(t, t.__name__)
                )
                raise _bad(f"{what} must hold numbers only, found a {kind}")

    walk(data, 0)
    return out


def _tensor(t: Any, i: int) -> tuple[str, list[int], np.ndarray]:
    what = f"inputs[{i}]"
    if not isinstance(t, dict):
        raise _bad(f"{what} must be an object with name, shape, datatype and data")
    missing = [k for k in ("name", "shape", "datatype", "data") if k not in t]
    if missing:
        raise _bad(f"{what} is missing {missing}")
    name, shape, datatype = t["name"], t["shape"], t["datatype"]
    if not isinstance(name, str) or not name:
        raise _bad(f"{what}.name must be a non-empty string")
    what = f"input '{name}'"
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise _bad(f"{what}: shape must be an array of non-negative integers")
    if datatype not in NUMERIC:
        raise _bad(
            f"{what}: datatype {datatype!r} is not numeric; send FP32 (or another number type)"
        )
    if "parameters" in t and not isinstance(t["parameters"], dict):
        raise _bad(f"{what}: parameters must be an object")
    flat = flat_numbers(t["data"], f"{what}.data")
    if len(flat) != prod(shape):
        raise _bad(f"{what}: shape {shape} holds {prod(shape)} values, data has {len(flat)}")
    return name, shape, to_float32(flat, f"{what}.data")


def parse_infer(doc: Any) -> Rows:
    if not isinstance(doc, dict):
        raise _bad("the body must be a JSON object with 'inputs'")
    if "id" in doc and not isinstance(doc["id"], str):
        raise _bad("id must be a string")
    if "parameters" in doc and not isinstance(doc["parameters"], dict):
        raise _bad("parameters must be an object")
    outputs = doc.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise _bad("outputs must be an array of objects with a name")
        for o in outputs:
            if o.get("name") != OUTPUT_NAME:
                raise _bad(
                    f"unknown output {o.get('name')!r}; the model has one output, 'prediction'"
                )
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise _bad("inputs must be a non-empty array of tensors")
    tensors = [_tensor(t, i) for i, t in enumerate(inputs)]
    if len(tensors) == 1 and tensors[0][0] == INPUT_NAME:
        _, shape, values = tensors[0]
        if len(shape) != 2:
            raise _bad(f"input 'input': shape must be [N, n_features], got {shape}")
        if shape[0] == 0:
            raise _bad("input 'input' has no rows")
        return Rows(None, values.reshape(shape))
    names = [name for name, _, _ in tensors]
    if INPUT_NAME in names:
        raise _bad("send either one tensor 'input' or one tensor per feature, not both")
    check_unique(names, "input names")
    n_rows = {shape[0] if shape else -1 for _, shape, _ in tensors}
    for name, shape, _ in tensors:
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise _bad(f"input '{name}': a per-feature tensor has shape [N] or [N, 1], got {shape}")
    if len(n_rows) != 1 or 0 in n_rows:
        raise _bad(f"per-feature tensors must have the same, non-zero N; got {sorted(n_rows)}")
    return Rows(tuple(names), np.stack([v for _, _, v in tensors], axis=1))


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

            return ok({"name": "tradeloop", "version": version("tradeloop"), "extensions": []})

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
                override = served.variant
            require_json(ctx.headers)
            raw = await read_body(request, ctx.headers, limit)
            key = gw.key(ctx)

            def work() -> tuple[Any, Scored, list[dict[str, Any]] | None]:
                doc = parse_json(raw)
                rows = parse_infer(doc)
                explain = wants(doc.get("parameters", {}).get("explain"), "parameters.explain")
                scored = gw.score(
                    rows, ctx, route="/v2/models/{name}/infer", key=key, override=override
                )
                return doc, scored, explanations.rows(scored) if explain else None

            doc, scored, explained = await off_loop(work, len(raw))
            y = scored.predictions
            body: dict[str, Any] = {
                "model_name": gw.model_name,
                "model_version": scored.served.version,
                "outputs": [
                    {"name": OUTPUT_NAME, "datatype": "FP32", "shape": [len(y)], "data": y.tolist()}
                ],
            }
            if "id" in doc:
                body["id"] = doc["id"]
            if explained is not None:  # parameters.explain: attributions per row
                body["parameters"] = {"explanations": explained}
            return ok(body)

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
