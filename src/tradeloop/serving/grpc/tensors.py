"""ModelInferRequest tensors to `Rows`, and predictions back to a ModelInferResponse.

The same envelope as the REST binding (`protocol_v2`): one tensor `input` [N, n_features] in
the model's feature order, or one tensor per feature, named for it, of shape [N] or [N, 1].
Data comes either typed (`contents.fp32_contents`, ...) or as `raw_input_contents`
(little-endian, row-major: what tritonclient sends). Every numeric datatype is scored as
float32; the values pass the same checks as every other protocol's (finite, in float32 range).
Every refusal is an `ApiError(400)` naming the tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

import numpy as np

from tradeloop.serving.http import ApiError
from tradeloop.serving.inputs import Rows, check_unique, to_float32
from tradeloop.serving.runtime import INPUT_NAME, OUTPUT_NAME

# datatype -> (numpy dtype of its raw bytes, the InferTensorContents field holding it typed)
DATATYPES: dict[str, tuple[np.dtype[Any], str | None]] = {
    "FP16": (np.dtype("<f2"), None),  # raw only: protobuf has no 16-bit float
    "FP32": (np.dtype("<f4"), "fp32_contents"),
    "FP64": (np.dtype("<f8"), "fp64_contents"),
    "INT8": (np.dtype("i1"), "int_contents"),
    "INT16": (np.dtype("<i2"), "int_contents"),
    "INT32": (np.dtype("<i4"), "int_contents"),
    "INT64": (np.dtype("<i8"), "int64_contents"),
    "UINT8": (np.dtype("u1"), "uint_contents"),
    "UINT16": (np.dtype("<u2"), "uint_contents"),
    "UINT32": (np.dtype("<u4"), "uint_contents"),
    "UINT64": (np.dtype("<u8"), "uint64_contents"),
}
_F4 = np.dtype("<f4")


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def _values(t: Any, raw: bytes | None) -> tuple[list[int], np.ndarray]:
    """One input tensor's shape and float32 values (flat)."""
    what = f"input '{t.name}'"
    shape = list(t.shape)
    if any(d < 0 for d in shape):
        raise _bad(f"{what}: shape {shape} has a negative dimension")
    kind = DATATYPES.get(t.datatype)
    if kind is None:
        raise _bad(
            f"{what}: datatype {t.datatype!r} is not a number type the model can take; "
            f"send one of {', '.join(DATATYPES)}"
        )
    dtype, field = kind
    n = prod(shape)
    if raw is not None:
        if len(raw) != n * dtype.itemsize:
            raise _bad(
                f"{what}: shape {shape} of {t.datatype} needs {n * dtype.itemsize} raw bytes, "
                f"got {len(raw)}"
            )
        data: Any = np.frombuffer(raw, dtype)
    else:
        if field is None:
            raise _bad(f"{what}: {t.datatype} data must come in raw_input_contents")
        data = getattr(t.contents, field)
        if len(data) != n:
            raise _bad(f"{what}: shape {shape} holds {n} values, contents.{field} has {len(data)}")
    if dtype == _F4 and raw is not None:
        return shape, _finite(data, what)
    return shape, to_float32(data, what)


def _finite(x: np.ndarray, what: str) -> np.ndarray:
    """`x` when every value is finite. One float64 sum decides it (float32 values cannot
    overflow it; NaN or inf anywhere make it NaN or inf): cheaper than isfinite().all()."""
    s = float(x.sum(dtype=np.float64))
    if s - s != 0.0:
        raise _bad(f"{what}: NaN and infinite values are not allowed")
    return x


def request_rows(request: Any) -> Rows:
    """The request's tensors as the matrix `Gateway.score` takes."""
    inputs = request.inputs
    raws = request.raw_input_contents
    if len(inputs) == 1 and len(raws) == 1 and not request.outputs:
        # What tritonclient sends: raw FP32 'input' [N, k]. Same checks, fewer steps.
        t, raw = inputs[0], raws[0]
        if t.name == INPUT_NAME and t.datatype == "FP32" and len(t.shape) == 2:
            n, k = t.shape
            if n > 0 and k >= 0 and len(raw) == n * k * 4 and not t.HasField("contents"):
                return Rows(
                    None, _finite(np.frombuffer(raw, _F4), f"input '{t.name}'").reshape(n, k)
                )
    return _general_rows(request)


def _general_rows(request: Any) -> Rows:
    inputs = request.inputs
    if not inputs:
        raise _bad("the request has no inputs; send the tensor 'input' [N, n_features]")
    raws: Sequence[bytes | None] = request.raw_input_contents
    if raws:
        if len(raws) != len(inputs):
            raise _bad(
                f"raw_input_contents has {len(raws)} entries for {len(inputs)} inputs; "
                "send one per input, in the same order"
            )
        typed = [t.name for t in inputs if t.HasField("contents")]
        if typed:
            raise _bad(f"input(s) {typed} set contents as well as raw_input_contents; use one")
    else:
        raws = [None] * len(inputs)
    for o in request.outputs:
        if o.name != OUTPUT_NAME:
            raise _bad(f"unknown output {o.name!r}; the model has one output, '{OUTPUT_NAME}'")
    names = [t.name for t in inputs]
    if not all(names):
        raise _bad("every input tensor needs a name")
    if len(inputs) == 1 and names[0] == INPUT_NAME:
        shape, values = _values(inputs[0], raws[0])
        if len(shape) != 2:
            raise _bad(f"input '{INPUT_NAME}': shape must be [N, n_features], got {shape}")
        if shape[0] == 0:
            raise _bad(f"input '{INPUT_NAME}' has no rows")
        return Rows(None, values.reshape(shape))
    if INPUT_NAME in names:
        raise _bad(f"send either one tensor '{INPUT_NAME}' or one tensor per feature, not both")
    check_unique(names, "input names")
    columns = []
    for t, raw in zip(inputs, raws, strict=True):
        shape, values = _values(t, raw)
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise _bad(
                f"input '{t.name}': a per-feature tensor has shape [N] or [N, 1], got {shape}"
            )
        columns.append((shape[0], values))
    n_rows = {n for n, _ in columns}
    if len(n_rows) != 1 or 0 in n_rows:
        raise _bad(f"per-feature tensors must have the same, non-zero N; got {sorted(n_rows)}")
    return Rows(tuple(names), np.stack([v for _, v in columns], axis=1))


def fill_response(response: Any, y: np.ndarray, *, raw: bool) -> None:
    """The predictions as the output `prediction` (FP32 [N]): as raw_output_contents when the
    request sent raw inputs (as Triton answers), typed fp32_contents otherwise."""
    out = response.outputs.add()
    out.name, out.datatype = OUTPUT_NAME, "FP32"
    out.shape.append(len(y))
    if raw:
        response.raw_output_contents.append(y.astype(_F4, copy=False).tobytes())
    else:
        out.contents.fp32_contents.extend(y.tolist())
