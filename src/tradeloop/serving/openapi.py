"""The gateway's OpenAPI 3 document, written by hand (no pydantic on the request path).

It is built per request from the model being served, so the MLflow record schema lists the
champion's actual feature names. A test runs schemathesis against it on a live app.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]
F32_MAX = 3.4028234663852886e38


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(style: str, *codes: int) -> dict[str, Schema]:
    schema = _ref("V2Error" if style == "v2" else "Error")
    text = {
        400: "Malformed request: the message names the problem",
        401: "Missing or unknown bearer token",
        403: "The token's role is too low",
        404: "Unknown model, version or symbol",
        409: "The symbol's features are not ready yet (warm-up)",
        413: "Body over max_body_bytes",
        415: "Unsupported Content-Type",
        503: "No model loaded yet",
    }
    return {str(c): _json(schema, text[c]) for c in codes}


_NUMBER = {"type": "number"}
_HEADERS = [
    {
        "name": "X-Tradeloop-Variant",
        "in": "header",
        "required": False,
        "description": "Force a variant (needs an operator token when tokens are required).",
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


def _schemas(features: list[str]) -> dict[str, Schema]:
    n = len(features)
    feature_name: Schema = {"type": "string", "enum": features} if features else {"type": "string"}
    required = {"required": features} if features else {}  # JSON Schema needs >= 1 name
    value = {"type": "number", "minimum": -F32_MAX, "maximum": F32_MAX}  # finite float32
    record = {
        "type": "object",
        "description": "One row: feature name to number.",
        **required,
        "properties": {name: value for name in features},
        "additionalProperties": False,
    }
    row = {"type": "array", "minItems": n, "maxItems": n, "items": value}
    rows = {"type": "array", "minItems": 1, "items": row}
    records = {"type": "array", "minItems": 1, "items": record}
    columns = {
        "type": "object",
        **required,
        "properties": {name: {"type": "array", "minItems": 1, "items": value} for name in features},
        "additionalProperties": False,
    }
    split = {
        "type": "object",
        "required": ["columns", "data"],
        "properties": {
            "columns": {"type": "array", "minItems": 1, "uniqueItems": True, "items": feature_name},
            "data": {"type": "array", "minItems": 1, "items": {"type": "array", "items": value}},
            "index": {"type": "array"},
        },
    }

    datatype = {"type": "string", "enum": ["FP32", "FP64", "FP16", "INT32", "INT64"]}
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": datatype,
            "parameters": {"type": "object"},
            "data": {"type": "array"},
        },
    }
    tensors = {"type": "array", "minItems": 1, "items": tensor}
    one_row_matrix = {
        "type": "array",
        "minItems": 1,
        "maxItems": 1,
        "items": {
            "type": "object",
            "required": ["name", "shape", "datatype", "data"],
            "properties": {
                "name": {"type": "string", "enum": ["input"]},
                "shape": {"type": "array", "enum": [[1, n]]},
                "datatype": datatype,
                "data": {"type": "array", "minItems": n, "maxItems": n, "items": value},
            },
        },
    }
    one_row_columns = {
        "type": "array",
        "minItems": n,
        "maxItems": n,
        "items": {
            "type": "object",
            "required": ["name", "shape", "datatype", "data"],
            "properties": {
                "name": feature_name,
                "shape": {"type": "array", "enum": [[1]]},
                "datatype": datatype,
                "data": {"type": "array", "minItems": 1, "maxItems": 1, "items": value},
            },
        },
    }

    def one(key: str, schema: Schema) -> Schema:
        return {
            "type": "object",
            "required": [key],
            "properties": {key: schema, "params": {"type": "object"}},
            "additionalProperties": False,
        }

    return {
        "Error": {
            "type": "object",
            "required": ["error_code", "message"],
            "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
        },
        "V2Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "Invocation": {
            "description": "MLflow scoring input: exactly one of the four formats "
            "(rows in `instances`/`inputs` list the features in the model's order).",
            "oneOf": [
                one("dataframe_split", split),
                one("dataframe_records", records),
                one("instances", {"oneOf": [records, rows]}),
                one("inputs", {"oneOf": [columns, records, rows]}),
            ],
        },
        "Predictions": {
            "type": "object",
            "required": ["predictions"],
            "properties": {
                "predictions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["prediction"],
                        "properties": {"prediction": _NUMBER},
                    },
                }
            },
        },
        "InferRequest": {
            "description": "One tensor `input` [N, n_features] (data flat or nested), or one "
            "tensor per feature of shape [N] or [N, 1]. The first two `inputs` forms are the "
            "one-row cases of the general third.",
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "inputs": {"anyOf": [one_row_matrix, one_row_columns, tensors]},
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {"name": {"type": "string", "enum": ["prediction"]}},
                    },
                },
            },
        },
        "InferResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "shape", "datatype", "data"],
                        "properties": {
                            "name": {"type": "string"},
                            "shape": {"type": "array", "items": {"type": "integer"}},
                            "datatype": {"type": "string"},
                            "data": {"type": "array", "items": _NUMBER},
                        },
                    },
                },
            },
        },
        "TensorMetadata": {
            "type": "object",
            "required": ["name", "datatype", "shape"],
            "properties": {
                "name": {"type": "string"},
                "datatype": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}},
            },
        },
        "ModelMetadata": {
            "type": "object",
            "required": ["name", "platform", "inputs", "outputs"],
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": _ref("TensorMetadata")},
                "outputs": {"type": "array", "items": _ref("TensorMetadata")},
                "parameters": {"type": "object"},
            },
        },
        "Bar": {
            "type": "object",
            "required": ["symbol", "timestamp", "open", "high", "low", "close", "volume"],
            "additionalProperties": False,
            "properties": {
                "symbol": {"type": "string", "pattern": "^[A-Za-z0-9^][A-Za-z0-9._:=^-]{0,63}$"},
                "timestamp": {"type": "string", "format": "date-time"},
                "open": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                "high": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                "low": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                "close": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                "volume": {"type": "number", "minimum": 0},
            },
        },
        "BarsResponse": {
            "type": "object",
            "required": ["accepted", "skipped", "symbols"],
            "properties": {
                "accepted": {"type": "integer"},
                "skipped": {"type": "array", "items": {"type": "object"}},
                "symbols": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Signal": {
            "type": "object",
            "required": [
                "symbol",
                "prediction",
                "position",
                "side",
                "model",
                "version",
                "variant",
                "feature_timestamp",
                "features",
            ],
            "properties": {
                "symbol": {"type": "string"},
                "prediction": _NUMBER,
                "position": {"type": "integer", "enum": [-1, 0, 1]},
                "side": {"type": "string", "enum": ["long", "short", "flat"]},
                "model": {"type": "string"},
                "version": {"type": "string"},
                "variant": {"type": "string"},
                "feature_timestamp": {"type": "string", "format": "date-time"},
                "features": {"type": "object", "additionalProperties": _NUMBER},
            },
        },
        "Status": {
            "type": "object",
            "required": ["ready", "model", "variants"],
            "properties": {
                "ready": {"type": "boolean"},
                "model": {"type": "string"},
                "variants": {"type": "array", "items": {"type": "object"}},
            },
        },
    }


def openapi_document(
    *,
    model_name: str,
    features: list[str],
    versions: list[str],
    trading: bool,
    require_token: bool,
    version: str,
) -> dict[str, Any]:
    """The document for what is served now: this model's name, versions and features."""
    name_param = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [model_name]},
    }
    version_schema = {"type": "string", "enum": versions} if versions else {"type": "string"}
    version_param = {"name": "version", "in": "path", "required": True, "schema": version_schema}
    secured: dict[str, Any] = {"security": [{"bearer": []}]} if require_token else {}
    auth_errors = (401, 403) if require_token else ()
    paths: dict[str, Any] = {
        "/invocations": {
            "post": {
                "summary": "MLflow scoring (drop-in for `mlflow models serve`)",
                "operationId": "invocations",
                "parameters": _HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref("Invocation")},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": _json(_ref("Predictions"), "One prediction per row"),
                    **_errors("mlflow", 400, *auth_errors, 413, 415, 503),
                },
                **secured,
            }
        },
        "/ping": {"get": _ping("ping")},
        "/health": {"get": _ping("health")},
        "/v2": {
            "get": {
                "operationId": "v2_server_metadata",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["name", "version", "extensions"],
                            "properties": {
                                "name": {"type": "string"},
                                "version": {"type": "string"},
                                "extensions": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                        "Server metadata",
                    )
                },
            }
        },
        "/v2/health/live": {
            "get": {
                "operationId": "v2_live",
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"live": {"type": "boolean"}}}, "Live"
                    )
                },
            }
        },
        "/v2/health/ready": {
            "get": {
                "operationId": "v2_ready",
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"ready": {"type": "boolean"}}}, "Ready"
                    ),
                    "503": _json(
                        {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                        "Not ready",
                    ),
                },
            }
        },
    }
    for suffix, params in (
        ("", [name_param]),
        ("/versions/{version}", [name_param, version_param]),
    ):
        base = f"/v2/models/{{name}}{suffix}"
        op = "_version" if suffix else ""
        ready_schema = {
            "type": "object",
            "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
        }
        paths[base] = {
            "get": {
                "operationId": f"v2_model_metadata{op}",
                "parameters": params,
                "responses": {
                    "200": _json(_ref("ModelMetadata"), "Model metadata"),
                    **_errors("v2", 404, 503),
                },
            }
        }
        paths[base + "/ready"] = {
            "get": {
                "operationId": f"v2_model_ready{op}",
                "parameters": params,
                "responses": {
                    "200": _json(ready_schema, "Ready"),
                    "503": _json(ready_schema, "Not ready"),
                    **_errors("v2", 404),
                },
            }
        }
        paths[base + "/infer"] = {
            "post": {
                "operationId": f"v2_infer{op}",
                "parameters": params + _HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("InferRequest")}},
                },
                "responses": {
                    "200": _json(_ref("InferResponse"), "Predictions as the tensor 'prediction'"),
                    **_errors("v2", 400, *auth_errors, 404, 413, 415, 503),
                },
                **secured,
            }
        }
    if trading:
        paths["/v1/bars"] = {
            "post": {
                "summary": "Feed bars to the online features",
                "operationId": "post_bars",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["bars"],
                                "additionalProperties": False,
                                "properties": {
                                    "bars": {"type": "array", "minItems": 1, "items": _ref("Bar")}
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(_ref("BarsResponse"), "Bars applied (and any skipped)"),
                    **_errors("mlflow", 400, *auth_errors, 413, 415),
                },
                **secured,
            }
        }
        paths["/v1/signals/{symbol}"] = {
            "get": {
                "summary": "The latest signal for a symbol",
                "operationId": "get_signal",
                "parameters": [
                    {
                        "name": "symbol",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    *_HEADERS,
                ],
                "responses": {
                    "200": _json(_ref("Signal"), "Prediction and position"),
                    **_errors("mlflow", 400, *auth_errors, 404, 409, 503),
                },
                **secured,
            }
        }
    paths["/healthz"] = {
        "get": {
            "operationId": "healthz",
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"status": {"type": "string"}}},
                    "The process is up",
                )
            },
        }
    }
    paths["/readyz"] = {
        "get": {
            "operationId": "readyz",
            "responses": {
                "200": _json(_ref("Status"), "Every deployed variant is loaded"),
                "503": _json(_ref("Status"), "Not ready"),
            },
        }
    }
    paths["/metrics"] = {
        "get": {
            "operationId": "metrics",
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "responses": {"200": _json({"type": "object"}, "This document")},
        }
    }
    paths["/admin/reload"] = {
        "post": {
            "summary": "Re-read deployment state now",
            "operationId": "admin_reload",
            "security": [{"bearer": []}],
            "responses": {
                "200": _json(_ref("Status"), "State after the reload"),
                **_errors("mlflow", 401, 403),
            },
        }
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": f"tradeloop gateway: {model_name}", "version": version},
        "paths": paths,
        "components": {
            "schemas": _schemas(features),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _ping(op: str) -> dict[str, Any]:
    return {
        "operationId": op,
        "summary": "MLflow health check: 200 once a model is loaded",
        "responses": {
            "200": {
                "description": "A model is loaded (body is a newline, as MLflow sends)",
                "content": {"application/json": {}},
            },
            **_errors("mlflow", 503),
        },
    }
