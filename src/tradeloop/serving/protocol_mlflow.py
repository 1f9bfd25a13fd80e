"""MLflow's scoring protocol, so clients of `mlflow models serve` work unchanged.

`POST /invocations` takes JSON with exactly one of `dataframe_split`, `dataframe_records`,
`instances` or `inputs` (an optional `params` is accepted and ignored, as ONNX models take
none), or `text/csv` with a header row. The answer is what MLflow's server gives for an ONNX
model with a column signature: `{"predictions": [{"prediction": 0.53}, ...]}`. Errors are
MLflow's `{"error_code": ..., "message": ...}`.

Stricter than MLflow on purpose: a feature no served model uses is refused (MLflow drops it
with a warning), and so are strings, booleans, nulls and non-finite numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model
from starlette.requests import Request
from starlette.responses import Response

from tradeloop.serving.context import Ctx
from tradeloop.serving.gateway import Gateway, Scored, inline, off_loop
from tradeloop.serving.http import (
    JSON,
    ApiError,
    JSONResponse,
    bad_request,
    invalid_value,
    media_type,
    parse_json,
    read_body,
)
from tradeloop.serving.inputs import (
    Rows,
    columnar_table,
    columns_table,
    number_rows,
    records_table,
    to_float32,
)
from tradeloop.serving.openapi import Open
from tradeloop.serving.protocol import (
    Base,
    Call,
    DocContext,
    Example,
    Op,
    ProtocolOptions,
    Reply,
)
from tradeloop.serving.schemas import F32, Strict, feature_name, feature_object, sized, unique

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CSV = "text/csv"


def parse_payload(doc: Any) -> Rows:
    if not isinstance(doc, dict):
        kind = "a list" if isinstance(doc, list) else type(doc).__name__
        raise bad_request(
            f"the body must be a JSON object with exactly one of {list(FORMATS)}; got {kind}"
        )
    keys = [k for k in FORMATS if k in doc]
    if len(keys) != 1:
        raise bad_request(
            f"the body must be a JSON object with exactly one of {list(FORMATS)}; got fields {list(doc)}"
        )
    fmt = keys[0]
    data = doc[fmt]
    if fmt == "dataframe_split":
        if not isinstance(data, dict):
            raise invalid_value("dataframe_split must be an object with 'columns' and 'data'")
        if "columns" not in data or "data" not in data:
            raise invalid_value("dataframe_split needs 'columns' (feature names) and 'data' (rows)")
        return columns_table(data["columns"], data["data"], fmt)
    if fmt == "inputs" and isinstance(data, dict):
        return columnar_table(data, fmt)
    if isinstance(data, list) and data and isinstance(data[0], list):
        return Rows(None, number_rows(data, len(data[0]), fmt))  # rows in the model's order
    return records_table(data, fmt)


def parse_csv(body: bytes) -> Rows:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"the CSV body is not UTF-8: {exc}") from exc
    try:
        lines = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as exc:
        raise bad_request(f"the body is not valid CSV: {exc}") from exc
    if len(lines) < 2:
        raise invalid_value("the CSV needs a header row of feature names and at least one row")
    header = [h.strip() for h in lines[0]]
    values: list[list[float]] = []
    for i, row in enumerate(lines[1:], start=2):
        if len(row) != len(header):
            raise invalid_value(f"CSV line {i} has {len(row)} fields; the header has {len(header)}")
        parsed = []
        for name, cell in zip(header, row, strict=True):
            try:
                parsed.append(float(cell))
            except ValueError:
                raise invalid_value(
                    f"CSV line {i}, column {name}: {cell!r} is not a number"
                ) from None
        values.append(parsed)
    if len(set(header)) != len(header):
        raise invalid_value(f"the CSV header repeats a name: {header}")
    return Rows(tuple(header), to_float32(values, "CSV"))


NAME = "mlflow"


def schemas(features: Sequence[str]) -> list[type[BaseModel]]:
    n = len(features)
    Record = feature_object("Record", features, F32, "One row: feature name to number.")
    Columns = feature_object("Columns", features, sized(F32, 1), "Feature name to its column.")
    rows = sized(sized(F32, n, n), 1)  # rows in the model's feature order
    records = sized(Record, 1)

    split: dict[str, Any] = {
        "columns": (unique(feature_name(features), 1), ...),
        "data": (sized(list[F32], 1), ...),
        "index": (list[Any], Field(default_factory=list)),
    }
    Split = create_model("Split", __config__=ConfigDict(extra="allow"), **split)

    def one(key: str, schema: Any) -> type[BaseModel]:
        fields: dict[str, Any] = {key: (schema, ...), "params": (dict[str, Any], {})}
        model: type[BaseModel] = create_model(f"Invocation_{key}", __base__=Strict, **fields)
        return model

    forms = [
        one("dataframe_split", Split),
        one("dataframe_records", records),
        one("instances", Union[records, rows]),  # noqa: UP007  # a Union of run-time types
        one("inputs", Union[Columns, records, rows]),  # noqa: UP007
    ]

    class Invocation(RootModel[Union[tuple(forms)]]):  # type: ignore[misc]  # noqa: UP007  # a Union built at run time
        """MLflow scoring input: exactly one of the four formats (rows in
        `instances`/`inputs` list the features in the model's order)."""

    return [Invocation, Predictions]


class Prediction(Open):
    prediction: float


class Predictions(Open):
    predictions: list[Prediction]


class MlflowProtocol(Base):
    name = NAME

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def schemas(self, doc: DocContext) -> list[type[BaseModel]]:
        return schemas(doc.features)

    def hot_paths(self) -> Mapping[str, Mapping[str, str]]:
        return {"/invocations": {}}

    def health_paths(self) -> list[str]:
        return ["/ping", "/health"]

    def example(self, features: Sequence[str], row: Sequence[float]) -> Example:
        body = {"dataframe_split": {"columns": list(features), "data": [list(row)]}}
        given = dict(zip(features, row, strict=True))
        return Example(
            (Call("POST", "/invocations", body),),
            lambda answer: (given, float(answer["predictions"][0]["prediction"])),
        )

    def operations(self) -> list[Op]:
        gw = self.gw
        limit = gw.serving.max_body_bytes

        async def invocations(request: Request, ctx: Ctx) -> Response:
            override = await gw.authorize_predict(ctx)
            mime, params = media_type(ctx.headers)
            charset = params.pop("charset", "utf-8").lower()
            if mime not in (JSON, CSV):
                raise ApiError(
                    415,
                    f"Content-Type must be application/json or text/csv, got {mime or 'none'!r}",
                )
            if charset not in ("utf-8", "utf8"):
                raise ApiError(415, f"only UTF-8 is supported, got charset={charset}")
            if params:
                raise ApiError(
                    415, f"unrecognized Content-Type parameters: {', '.join(sorted(params))}"
                )
            body = await read_body(request, ctx.headers, limit)
            key = gw.key(ctx)

            def parse() -> Rows:
                return parse_payload(parse_json(body)) if mime == JSON else parse_csv(body)

            def work() -> Scored:
                return gw.score(parse(), ctx, route="/invocations", key=key, override=override)

            if gw.batcher is not None and inline(len(body)):
                scored = await gw.score_async(
                    parse(), ctx, route="/invocations", key=key, override=override
                )
            else:
                scored = await off_loop(work, len(body))
            return JSONResponse(
                {"predictions": [{"prediction": v} for v in scored.predictions.tolist()]}
            )

        async def ping(request: Request, ctx: Ctx) -> Response:
            if not gw.snapshot.live:
                raise ApiError(503, "no model is loaded yet", "TEMPORARILY_UNAVAILABLE")
            return Response(b"\n", media_type=JSON)  # what MLflow's server answers

        loaded = Reply(None, "A model is loaded (body is a newline, as MLflow sends)")
        health = "MLflow health check: 200 once a model is loaded"
        return [
            Op(
                "POST",
                "/invocations",
                invocations,
                "invocations",
                {200: Reply("Predictions", "One prediction per row")},
                (400, 413, 415, 503),
                {JSON: "Invocation", CSV: None},
                summary="MLflow scoring (drop-in for `mlflow models serve`)",
                predict=True,
            ),
            Op("GET", "/ping", ping, "ping", {200: loaded}, (503,), summary=health),
            Op("GET", "/health", ping, "health", {200: loaded}, (503,), summary=health),
        ]


def factory(gw: Gateway, options: ProtocolOptions) -> MlflowProtocol:
    return MlflowProtocol(gw)
