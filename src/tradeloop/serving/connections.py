"""Connection hygiene for the gateway: a header deadline, an idle timeout, a connection limit.

uvicorn closes a keep-alive connection after `timeout_keep_alive` and answers 503 past
`limit_concurrency`, but it has no deadline for reading a request's headers: a client that
connects and sends nothing, or sends its headers one byte at a time (slowloris), held a
connection, and its slot, forever. `with_header_timeout` wraps uvicorn's HTTP protocol class
so that from the first byte of a request (or from the connection's start) the headers must be
complete within `header_timeout` seconds, or the connection is closed.

All three come from the spec's `deployment.serving`: `header_timeout`, `idle_timeout`,
`max_connections`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from typing import Any

from tradeloop.spec import ServingSpec

log = logging.getLogger(__name__)


def _base_protocol(http: str) -> type[asyncio.Protocol]:
    if http == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return H11Protocol


def with_header_timeout(base: type[asyncio.Protocol], seconds: float) -> type[asyncio.Protocol]:
    """`base` (uvicorn's httptools or h11 protocol), closing connections whose request headers
    are not complete within `seconds`. uvicorn makes a new request cycle once the headers are
    parsed, so "the cycle changed" is "the headers arrived", for both parsers."""

    class HeaderDeadline(base):  # type: ignore[valid-type,misc]  # base is a runtime class
        header_timeout = seconds

        def connection_made(self, transport: Any) -> None:
            self._deadline: asyncio.TimerHandle | None = None
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            idle = cycle is None or cycle.response_complete
            if self._deadline is None and idle and getattr(self, "_fast", None) is None:
                self._arm()  # the first bytes of a new request (not a fast one's body)
            super().data_received(data)
            if self.cycle is not cycle:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(self.header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                log.debug("closing %s: headers not complete in %ss", self.client, seconds)
                self.transport.close()

    HeaderDeadline.__name__ = HeaderDeadline.__qualname__ = f"HeaderDeadline{base.__name__}"
    return HeaderDeadline


def default_http() -> str:
    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def connection_options(
    serving: ServingSpec, http: str | None = None, app: Any = None
) -> dict[str, Any]:
    """uvicorn settings for the spec's connection limits; with httptools and a `GatewayApp`
    `app`, its hot routes take the fast lane (`fast_lane.py`)."""
    http = http or default_http()
    protocol = with_header_timeout(_base_protocol(http), serving.header_timeout)
    if http == "httptools" and app is not None and serving.fast_lane:
        from tradeloop.serving.fast_lane import with_fast_lane
        from tradeloop.serving.hot_routes import GatewayApp

        if isinstance(app, GatewayApp):
            protocol = with_fast_lane(protocol, app)
    return {
        "http": protocol,
        "timeout_keep_alive": serving.idle_timeout,
        "limit_concurrency": serving.max_connections,
    }
