"""The gateway's OpenAPI 3.1 document, generated from the route table and pydantic models.

Each protocol's `Op`s say which component schema a body or an answer has; the schemas are
pydantic models the protocols build per document from what is being served (so the MLflow
record schema lists the champion's actual feature names). pydantic only describes here: the
request path validates by hand, which is faster for single rows. A test runs schemathesis
against the document on a live app.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from tradeloop.serving.protocol import JSON, DocContext, Op

Schema = dict[str, Any]
REF = "#/components/schemas/{model}"

ERROR_TEXT = {
    400: "Malformed request: the message names the problem",
    401: "Missing or unknown bearer token",
    403: "The token's role is too low",
    404: "Unknown model, version or symbol",
    409: "The symbol's features are not ready yet (warm-up)",
    413: "Body over max_body_bytes",
    415: "Unsupported Content-Type",
    503: "No model loaded yet, or the store is unreachable (the message says which)",
}
ROUTING_HEADERS: list[Schema] = [
    {
        "name": "X-Tradeloop-Variant",
        "in": "header",
        "required": False,
        "description": "Force a variant (needs an operator token, even when prediction "
        "tokens are off: it bypasses the rollout's traffic split).",
        "schema": {"type": "string", "enum": ["champion", "challenger"]},
    },
    {
        "name": "X-Tradeloop-Key",
        "in": "header",
        "required": False,
        "description": "Sticky routing key: the same key always meets the same variant.",
        "schema": {"type": "string", "maxLength": 200},
    },
]


class Error(BaseModel):
    error_code: str
    message: str


class V2Error(BaseModel):
    error: str


class Open(BaseModel):
    """Base of response models: the gateway may add fields, clients must ignore them."""

    model_config = ConfigDict(extra="allow")


def _ref(name: str) -> Schema:
    return {"$ref": REF.format(model=name)}


def _content(media: str, schema: str | None) -> Schema:
    if schema is not None:
        return {media: {"schema": _ref(schema)}}
    return {media: {}} if media == JSON else {media: {"schema": {"type": "string"}}}


def _path_params(path: str, doc: DocContext) -> list[Schema]:
    """`{name}` is the served model, `{version}` a served version, anything else a string."""
    out = []
    for part in path.split("/"):
        if not (part.startswith("{") and part.endswith("}")):
            continue
        name = part[1:-1]
        schema: Schema = {"type": "string"}
        if name == "name":
            schema = {"type": "string", "enum": [doc.model_name]}
        elif name == "version" and doc.versions:
            schema = {"type": "string", "enum": list(doc.versions)}
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


def _operation(op: Op, doc: DocContext) -> Schema:
    error = "V2Error" if op.style == "v2" else "Error"
    secured = op.operator or ((op.predict or op.token) and doc.require_token)
    # the variant header needs an operator token even when prediction tokens are off
    override = (401, 403) if op.predict else ()
    errors = sorted({*op.errors, *((401, 403, 503) if secured else ()), *override})
    responses: dict[str, Schema] = {
        str(status): {"description": r.description, "content": _content(r.media, r.schema)}
        for status, r in op.replies.items()
    }
    for status in errors:
        responses[str(status)] = {
            "description": ERROR_TEXT[status],
            "content": _content(JSON, error),
        }
    out: Schema = {"operationId": op.operation_id}
    if op.summary:
        out["summary"] = op.summary
    params = _path_params(op.path, doc) + (ROUTING_HEADERS if op.predict else [])
    if params:
        out["parameters"] = params
    if op.body:
        content = {media: _content(media, s)[media] for media, s in op.body.items()}
        out["requestBody"] = {"required": True, "content": content}
    out["responses"] = dict(sorted(responses.items()))
    if secured:
        out["security"] = [{"bearer": []}]
    return out


def components(models: Iterable[type[BaseModel]]) -> dict[str, Schema]:
    """Component schemas of `models` (and of every model they use), by model name."""
    unique = {m.__name__: m for m in models}
    _, top = models_json_schema([(m, "validation") for m in unique.values()], ref_template=REF)
    return dict(sorted(top.get("$defs", {}).items()))


def openapi_document(
    ops: Sequence[Op], models: Iterable[type[BaseModel]], doc: DocContext, *, version: str
) -> dict[str, Any]:
    """The document for what is served now: this model's name, versions and features."""
    paths: dict[str, dict[str, Schema]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, doc)
    return {
        "openapi": "3.1.0",
        "info": {"title": f"tradeloop gateway: {doc.model_name}", "version": version},
        "paths": paths,
        "components": {
            "schemas": components([Error, V2Error, *models]),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


__all__ = ["Error", "Open", "V2Error", "components", "openapi_document"]
