"""The Open Inference Protocol's gRPC binding (`inference.GRPCInferenceService`).

`stubs` compiles `inference.proto` at first use into a private descriptor pool, `tensors`
translates ModelInfer tensors, `service` maps the RPCs onto the `Gateway`, and `server` runs
them on the HTTP gateway's event loop: `build_app(..., grpc_port=8081)` or the spec's
`deployment.serving.grpc_port`.
"""

from tradeloop.serving.grpc.server import GrpcServer

__all__ = ["GrpcServer"]
