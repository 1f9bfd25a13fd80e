"""The Open Inference Protocol's bodies as pydantic models, for the OpenAPI document only
(`protocol_v2` validates requests by hand on the request path)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field

from tradeloop.serving.openapi import Open
from tradeloop.serving.schemas import F32, feature_name, fixed, sized

__all__ = ["schemas"]

# The number types a request may use (BOOL and BYTES are refused: see `v2_tensors`).
DATATYPES = Literal[
    "FP32", "FP64", "FP16", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"
]
FLOATS = Literal["FP32", "FP64"]  # the one-row forms below: their data are any float32 numbers


class ServerMetadata(Open):
    name: str
    version: str
    extensions: list[str]


class Live(Open):
    live: bool


class Ready(Open):
    ready: bool


class ModelReady(Open):
    name: str
    ready: bool


class TensorMetadata(Open):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(Open):
    name: str
    versions: list[str] = Field(default_factory=list)
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    parameters: dict[str, Any] = Field(default_factory=dict)


class OutputTensor(Open):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferResponse(Open):
    model_name: str
    model_version: str = ""
    id: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    outputs: list[OutputTensor]


class Tensor(BaseModel):
    name: str
    shape: list[Annotated[int, Field(ge=0)]]
    datatype: DATATYPES
    parameters: dict[str, Any] = Field(default_factory=dict)
    data: list[Any]


class RequestedOutput(BaseModel):
    name: Literal["prediction"]


def schemas(features: Sequence[str]) -> list[type[BaseModel]]:
    n = len(features)

    class MatrixRow(BaseModel):
        name: Literal["input"]
        shape: fixed({"enum": [[1, n]]}, int)  # type: ignore[valid-type]  # built at run time
        datatype: FLOATS
        data: sized(F32, n, n)  # type: ignore[valid-type]  # built at run time

    class ColumnRow(BaseModel):
        name: feature_name(features)  # type: ignore[valid-type]  # a Literal built at run time
        shape: fixed({"enum": [[1]]}, int)  # type: ignore[valid-type]  # built at run time
        datatype: FLOATS
        data: sized(F32, 1, 1)  # type: ignore[valid-type]  # built at run time

    class InferRequest(BaseModel):
        """One tensor `input` [N, n_features] (data flat or nested), or one tensor per
        feature of shape [N] or [N, 1]. The first two `inputs` forms are the one-row cases
        of the general third."""

        id: str = ""
        parameters: dict[str, Any] = Field(default_factory=dict)
        inputs: Union[sized(MatrixRow, 1, 1), sized(ColumnRow, n, n), sized(Tensor, 1)]  # type: ignore[valid-type]  # noqa: UP007  # built at run time
        outputs: list[RequestedOutput] = Field(default_factory=list)

    return [
        InferRequest,
        InferResponse,
        ModelMetadata,
        ServerMetadata,
        Live,
        Ready,
        ModelReady,
    ]
