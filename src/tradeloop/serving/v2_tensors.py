"""Open Inference Protocol request tensors to `Rows`: every datatype, as JSON or binary data.

The integer and float datatypes are converted as the protocol defines them. Their JSON values
must be of that kind and in the type's range (a 300 is no INT8, a 1.5 no INT32). Their binary
data is little-endian at the type's width. BOOL and BYTES are refused with a 400 naming the
tensor, since the model takes numbers and neither a flag nor a string is a feature value.

Binary data follows the extension as Triton and KServe implement it: the request's first
`Inference-Header-Content-Length` bytes are the JSON document, and the rest are the binary
inputs' bytes, in the order of `inputs`, each as long as its `binary_data_size` parameter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from math import prod
from typing import Any

import numpy as np

from tradeloop.serving.http import ApiError
from tradeloop.serving.inputs import Rows, check_unique, to_float32
from tradeloop.serving.runtime import INPUT_NAME

# Every datatype the protocol names, with its wire dtype (None: variable-length BYTES).
DTYPES: dict[str, np.dtype[Any] | None] = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": None,
}
NUMERIC = frozenset(k for k in DTYPES if k not in ("BOOL", "BYTES"))
_INT_RANGE = {
    k: (int(np.iinfo(d).min), int(np.iinfo(d).max))
    for k, d in DTYPES.items()
    if d is not None and d.kind in "iu"
}
_FP16_MAX = float(np.finfo(np.float16).max)
_F32_MAX = float(np.finfo(np.float32).max)
_MAX_DEPTH = 32


def bad(message: str) -> ApiError:
    return ApiError(400, message)


def flat_numbers(data: Any, what: str) -> list[float | int]:
    """Flat or nested lists of numbers to one flat list (row-major), refusing anything else."""
    if not isinstance(data, list):
        raise bad(f"{what} must be an array of numbers")
    if all(type(v) is float or type(v) is int for v in data):
        return data
    out: list[float | int] = []

    def walk(node: list[Any], depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise bad(f"{what} is nested too deeply")
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
                raise bad(f"{what} must hold numbers only, found a {kind}")

    walk(data, 0)
    return out


def _check_kind(flat: list[float | int], datatype: str, what: str) -> None:
    """JSON values must be what `datatype` holds: integers in range, or FP16-sized floats."""
    limits = _INT_RANGE.get(datatype)
    if limits is not None:
        lo, hi = limits
        for v in flat:
            if type(v) is not int or not lo <= v <= hi:
                raise bad(f"{what}: {datatype} holds integers in [{lo}, {hi}], found {v!r}")
    elif datatype == "FP16":
        for v in flat:
            if not -_FP16_MAX <= v <= _FP16_MAX:
                raise bad(f"{what}: {v!r} is outside the FP16 range (±{_FP16_MAX:g})")


class Binary:
    """The binary part of a request, handed out to the inputs in order."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, size: int, what: str) -> memoryview:
        end = self.pos + size
        if end > len(self.data):
            left = len(self.data) - self.pos
            raise bad(f"{what}: binary_data_size {size} runs past the body ({left} bytes left)")
        out, self.pos = self.data[self.pos : end], end
        return out

    def check_used(self) -> None:
        extra = len(self.data) - self.pos
        if extra:
            raise bad(f"{extra} bytes after the JSON header belong to no input's binary_data_size")


def _binary_values(
    raw: memoryview, datatype: str, shape: list[int], what: str
) -> np.ndarray[Any, Any]:
    dtype = DTYPES[datatype]
    assert dtype is not None  # NUMERIC only
    need = prod(shape) * dtype.itemsize
    if len(raw) != need:
        raise bad(
            f"{what}: binary_data_size {len(raw)} does not fit shape {shape} of {datatype} "
            f"({need} bytes)"
        )
    return np.frombuffer(raw, dtype=dtype)


def tensor(t: Any, i: int, binary: Binary | None) -> tuple[str, list[int], np.ndarray[Any, Any]]:
    """One input tensor to (name, shape, float32 values), refusing what does not fit."""
    what = f"inputs[{i}]"
    if not isinstance(t, dict):
        raise bad(f"{what} must be an object with name, shape, datatype and data")
    params = t.get("parameters", {})
    if not isinstance(params, dict):
        raise bad(f"{what}: parameters must be an object")
    size = params.get("binary_data_size")
    missing = [k for k in ("name", "shape", "datatype") if k not in t]
    if "data" not in t and size is None:
        missing.append("data")
    if missing:
        raise bad(f"{what} is missing {missing}")
    name, shape, datatype = t["name"], t["shape"], t["datatype"]
    if not isinstance(name, str) or not name:
        raise bad(f"{what}.name must be a non-empty string")
    what = f"input '{name}'"
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise bad(f"{what}: shape must be an array of non-negative integers")
    if datatype not in NUMERIC:
        known = "a datatype the model cannot take" if datatype in DTYPES else "no datatype"
        raise bad(
            f"{what}: {datatype!r} is {known}; send FP32 (or another number type: "
            f"{', '.join(sorted(NUMERIC))})"
        )
    if size is not None:
        if type(size) is not int or size < 0:
            raise bad(f"{what}: binary_data_size must be a non-negative integer")
        if "data" in t:
            raise bad(f"{what} has both data and binary_data_size; send one")
        if binary is None:
            raise bad(
                f"{what} has binary_data_size, but the request has no "
                "Inference-Header-Content-Length header"
            )
        values: Any = _binary_values(binary.take(size, what), datatype, shape, what)
        # FP32 as sent (tritonclient's usual case): finite float32 is in range by itself, and
        # one float64 sum (which float32 values cannot overflow) is finite only if all are
        if values.dtype == np.float32 and math.isfinite(values.sum(dtype=np.float64)):
            return name, shape, values
    else:
        values = flat_numbers(t["data"], f"{what}.data")
        if len(values) != prod(shape):
            raise bad(f"{what}: shape {shape} holds {prod(shape)} values, data has {len(values)}")
        _check_kind(values, datatype, f"{what}.data")
        # One Python comparison per value (NaN fails it, so does inf) beats numpy's checks on
        # the few values of a typical request; to_float32 then only words the refusal.
        if all(-_F32_MAX <= v <= _F32_MAX for v in values):
            return name, shape, np.array(values, dtype=np.float32)
    return name, shape, to_float32(values, f"{what}.data")


def rows_of(tensors: Sequence[tuple[str, list[int], np.ndarray[Any, Any]]]) -> Rows:
    """One tensor `input` [N, n_features], or one per feature of shape [N] or [N, 1]."""
    if len(tensors) == 1 and tensors[0][0] == INPUT_NAME:
        _, shape, values = tensors[0]
        if len(shape) != 2:
            raise bad(f"input 'input': shape must be [N, n_features], got {shape}")
        if shape[0] == 0:
            raise bad("input 'input' has no rows")
        return Rows(None, values.reshape(shape))
    names = [name for name, _, _ in tensors]
    if INPUT_NAME in names:
        raise bad("send either one tensor 'input' or one tensor per feature, not both")
    check_unique(names, "input names")
    n_rows = {shape[0] if shape else -1 for _, shape, _ in tensors}
    for name, shape, _ in tensors:
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise bad(f"input '{name}': a per-feature tensor has shape [N] or [N, 1], got {shape}")
    if len(n_rows) != 1 or 0 in n_rows:
        raise bad(f"per-feature tensors must have the same, non-zero N; got {sorted(n_rows)}")
    return Rows(tuple(names), np.stack([v for _, _, v in tensors], axis=1))


@dataclass(frozen=True, slots=True)
class Tensors:
    """What a parsed request asks of the model."""

    rows: Rows
    binary_output: bool  # answer `prediction` as binary data
    parameters: dict[str, Any]  # the request's own, echoed in the answer


def _flag(params: dict[str, Any], key: str, what: str) -> bool | None:
    v = params.get(key)
    if v is not None and type(v) is not bool:
        raise bad(f"{what}.{key} must be true or false")
    return v


def parse_infer(doc: Any, binary: Binary | None = None, output: str = "prediction") -> Tensors:
    """An inference request document (and its binary part, if any) to `Tensors`."""
    if not isinstance(doc, dict):
        raise bad("the body must be a JSON object with 'inputs'")
    if "id" in doc and not isinstance(doc["id"], str):
        raise bad("id must be a string")
    params = doc.get("parameters", {})
    if not isinstance(params, dict):
        raise bad("parameters must be an object")
    binary_output = bool(_flag(params, "binary_data_output", "parameters"))
    outputs = doc.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise bad("outputs must be an array of objects with a name")
        for i, o in enumerate(outputs):
            if o.get("name") != output:
                raise bad(f"unknown output {o.get('name')!r}; the model has one output, {output!r}")
            op = o.get("parameters", {})
            if not isinstance(op, dict):
                raise bad(f"outputs[{i}].parameters must be an object")
            if "classification" in op:
                raise bad(f"outputs[{i}]: the classification extension is not supported")
            flag = _flag(op, "binary_data", f"outputs[{i}].parameters")
            if flag is not None:
                binary_output = flag
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad("inputs must be a non-empty array of tensors")
    tensors = [tensor(t, i, binary) for i, t in enumerate(inputs)]
    if binary is not None:
        binary.check_used()
    echoed = {k: v for k, v in params.items() if k != "binary_data_output"}
    return Tensors(rows_of(tensors), binary_output, echoed)
