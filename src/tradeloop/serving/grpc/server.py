"""The gRPC listener beside the HTTP gateway: same process, same event loop, same Gateway.

`grpc.aio` runs its RPCs as coroutines on the loop that starts it, which is uvicorn's when
the app's lifespan starts it, so a gRPC call and an HTTP call share one thread, one set of
models and one prediction log with no locking. The receive limit is the spec's
`max_body_bytes`, so an oversized message gets RESOURCE_EXHAUSTED as an oversized HTTP body
gets 413.
"""

from __future__ import annotations

import logging

import grpc

from tradeloop.errors import BadInput
from tradeloop.serving.gateway import Gateway
from tradeloop.serving.grpc.service import InferenceService

log = logging.getLogger(__name__)


class GrpcServer:
    """Start and stop from a running event loop (the app's lifespan); `port` is the bound one
    (useful with port 0)."""

    def __init__(self, gw: Gateway, host: str = "127.0.0.1", port: int = 8081) -> None:
        self.gw = gw
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._server: grpc.aio.Server | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port if self.port is not None else self.requested_port}"

    async def start(self) -> None:
        limit = self.gw.serving.max_body_bytes
        server = grpc.aio.server(
            handlers=[InferenceService(self.gw).handler()],
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.so_reuseport", 0),  # a second gateway on the port must fail, not share
            ],
        )
        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            port = server.add_insecure_port(f"{host}:{self.requested_port}")
        except RuntimeError as exc:
            raise BadInput(
                f"cannot listen for gRPC on {host}:{self.requested_port}: {exc} "
                "(is the port in use? choose another with --grpc-port)"
            ) from exc
        await server.start()
        self._server, self.port = server, port
        log.info("gRPC (inference.GRPCInferenceService) on %s:%d", host, port)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking calls and let those in flight finish (up to `grace` seconds)."""
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
