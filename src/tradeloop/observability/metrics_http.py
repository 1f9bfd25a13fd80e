"""`/metrics` for processes without a gateway (`controller run --metrics-port`).

prometheus_client's own threaded HTTP server, bound to one registry (never the process-wide
default), so a controller process is scraped exactly like the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from tradeloop.errors import BadInput

__all__ = ["MetricsServer", "serve_metrics"]


@dataclass
class MetricsServer:
    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve `registry` on http://host:port/metrics from a daemon thread (port 0: any free)."""
    if not 0 <= port <= 65535:
        raise BadInput(f"--metrics-port must be 0..65535, got {port}")
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise BadInput(f"cannot serve metrics on {host}:{port}: {exc}") from exc
    return MetricsServer(server, thread)
