"""The one ONNX interface every adapter exports, and running it with onnxruntime.

`onnx` and `onnxruntime` are imported inside the functions: they take most of a second to
import, and only training, parity checks and serving need them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from tradeloop.errors import BadInput, RuntimeFailure
from tradeloop.training.adapters.schema import (
    INPUT_NAME,
    OUTPUT_NAME,
    SCHEMA_METADATA_KEY,
    InputSchema,
    Task,
)

if TYPE_CHECKING:
    import onnx


def finalize_onnx(
    model: onnx.ModelProto,
    source: str,
    task: Task,
    schema: InputSchema,
    description: dict[str, Any],
) -> bytes:
    """Give every converted model the same output: `prediction`, float32, shape [N].

    Classifiers: column 1 of the probabilities (Gather on axis 1); regressors: the [N, 1]
    values reshaped to [N]. The other converter outputs (labels) stop being graph outputs.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    if [i.name for i in graph.input] != [INPUT_NAME]:
        raise RuntimeFailure(f"converted model has inputs {[i.name for i in graph.input]}")
    if source not in {o.name for o in graph.output}:
        raise RuntimeFailure(f"converted model has no output {source!r}")
    if task == "classification":
        graph.initializer.append(
            numpy_helper.from_array(np.array(1, dtype=np.int64), "tradeloop_class1")
        )
        graph.node.append(
            helper.make_node(
                "Gather", [source, "tradeloop_class1"], [OUTPUT_NAME], axis=1, name="tradeloop_p1"
            )
        )
    else:
        graph.initializer.append(
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "tradeloop_flat")
        )
        graph.node.append(
            helper.make_node(
                "Reshape", [source, "tradeloop_flat"], [OUTPUT_NAME], name="tradeloop_flatten"
            )
        )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [None]))
    model.producer_name = "tradeloop"
    graph.name = f"tradeloop_{description['type']}_{task}"  # converters use a random uuid
    del model.metadata_props[:]
    onnx.helper.set_model_props(
        model,
        {
            SCHEMA_METADATA_KEY: schema.to_json(),
            "tradeloop.model": json.dumps(description, sort_keys=True),
        },
    )
    onnx.checker.check_model(model)
    blob: bytes = model.SerializeToString()
    return blob


def onnx_input_schema(onnx_bytes: bytes) -> InputSchema:
    """The InputSchema embedded in a model exported by `ModelAdapter.to_onnx`."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    for prop in model.metadata_props:
        if prop.key == SCHEMA_METADATA_KEY:
            return InputSchema.from_json(prop.value)
    raise BadInput("this ONNX model carries no tradeloop input schema")


def onnx_predict(onnx_bytes: bytes, X: np.ndarray) -> np.ndarray:
    """Run an exported model with onnxruntime: the `prediction` output, float32 [N]."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(onnx_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
    arr = np.asarray(X)
    inp = sess.get_inputs()[0]
    width = inp.shape[1] if len(inp.shape) == 2 else None
    if arr.ndim != 2 or (isinstance(width, int) and arr.shape[1] != width):
        raise BadInput(f"X must have shape [rows, {width}], got {arr.shape}")
    (out,) = sess.run([OUTPUT_NAME], {inp.name: np.ascontiguousarray(arr, dtype=np.float32)})
    return np.asarray(out).reshape(-1)
