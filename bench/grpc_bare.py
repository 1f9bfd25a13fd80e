"""The practical limit for gRPC on this machine: grpc.aio + onnxruntime and nothing else.

No routing, auth, prediction log or metrics; the same ModelInfer messages and the same model
as `tradeloop serve --grpc-port`, one onnxruntime thread, raw tensors in and out.

    .venv/bin/python bench/grpc_bare.py MODEL.onnx PORT
"""

from __future__ import annotations

import sys

import grpc
import numpy as np
import onnxruntime as ort

from tradeloop.serving.grpc.stubs import SERVICE, load


async def main(model: str, port: int) -> None:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    stubs = load()
    infer_m = stubs.methods["ModelInfer"]
    Reply = stubs["ModelInferResponse"]

    async def infer(request: object, context: object) -> object:
        t = request.inputs[0]  # type: ignore[attr-defined]
        x = np.frombuffer(request.raw_input_contents[0], np.float32).reshape(t.shape)  # type: ignore[attr-defined]
        y = sess.run(["prediction"], {"input": x})[0].reshape(-1)
        reply = Reply(model_name=request.model_name)  # type: ignore[attr-defined]
        out = reply.outputs.add(name="prediction", datatype="FP32", shape=[len(y)])
        del out
        reply.raw_output_contents.append(y.tobytes())
        return reply

    handler = grpc.unary_unary_rpc_method_handler(
        infer,
        request_deserializer=infer_m.request.FromString,
        response_serializer=infer_m.response.SerializeToString,
    )
    server = grpc.aio.server(
        handlers=[grpc.method_handlers_generic_handler(SERVICE, {"ModelInfer": handler})]
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(sys.argv[1], int(sys.argv[2])))
