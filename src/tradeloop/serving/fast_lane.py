"""The prediction routes answered from the HTTP parser's callbacks, in one socket write.

uvicorn turns every request into an ASGI cycle: a `RequestResponseCycle` and an
`asyncio.Event`, a task on the loop, `receive`/`send` messages, the proxy-headers middleware,
and two socket writes (head, then body). For a single-row prediction that plumbing cost more
than the model: py-spy under `bench/serving.py`'s load put 15% of the gateway's time in those
two writes alone, and the bare Starlette server pays them too.

`with_fast_lane(protocol, app)` subclasses uvicorn's httptools protocol so that a request for
one of `app.hot` routes (the exact paths of `hot_routes.py`), with a Content-Length of at most
`MAX_BODY` bytes, runs the same endpoint coroutine straight from `on_message_complete` and
writes status line, headers and body with one `transport.write`. The endpoint runs on a task
of its own (anyio's cancel scopes and thread hops need one), and the connection holds
requests pipelined behind it until it has answered, as uvicorn does.

Everything else takes uvicorn's path unchanged: other routes, chunked or larger bodies,
`Expect: 100-continue`, upgrades, a paused writer, the connection limit's 503.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
from starlette.requests import Request
from starlette.responses import Response
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from tradeloop.serving.hot_routes import Endpoint, GatewayApp

log = logging.getLogger(__name__)

# A bigger body is parsed and scored off the loop (`gateway.off_loop`) or refused (413) while
# it is still arriving: both are uvicorn's path.
MAX_BODY = 64 * 1024


class _Held:
    """Stands in for uvicorn's cycle while a fast request that suspended is being answered:
    uvicorn queues pipelined requests behind it, and `shutdown` closes after it."""

    __slots__ = ("disconnected", "keep_alive", "message_event", "response_complete")

    def __init__(self, keep_alive: bool) -> None:
        self.response_complete = False
        self.keep_alive = keep_alive
        self.disconnected = False
        self.message_event = asyncio.Event()


def with_fast_lane(base: type[asyncio.Protocol], app: GatewayApp) -> type[asyncio.Protocol]:
    """`base` (uvicorn's httptools protocol, possibly wrapped) with `app`'s hot routes
    answered directly. `base` must be `HttpToolsProtocol` or a subclass of it."""
    hot = app.hot

    class FastLane(base):  # type: ignore[valid-type,misc]  # base is a runtime class
        def connection_made(self, transport: Any) -> None:
            self._fast: Any = None  # (endpoint, params, keep_alive) of the request in progress
            self._fast_body: list[bytes] = []
            super().connection_made(transport)

        def on_headers_complete(self) -> None:
            self._fast = None
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete:
                super().on_headers_complete()  # behind a request in progress
                return
            parser = self.parser
            method = parser.get_method().decode("ascii")
            url = httptools.parse_url(self.url)
            raw_path = url.path
            path = raw_path.decode("ascii")
            hit = None if "%" in path or self.root_path else hot.match(method, path)
            if hit is None or not self._fast_allowed():
                super().on_headers_complete()
                return
            version = parser.get_http_version()
            scope = self.scope
            scope["method"] = method
            if version != "1.1":
                scope["http_version"] = version
            scope["path"] = path
            scope["raw_path"] = raw_path
            scope["query_string"] = url.query or b""
            scope["app"] = app
            scope["path_params"] = hit[1]
            keep_alive = version != "1.0" and parser.should_keep_alive()
            self._fast = (hit[0], keep_alive)
            self._fast_body = []
            self._fast_started()

        def _fast_allowed(self) -> bool:
            if self.expect_100_continue or self.parser.should_upgrade():
                return False
            if self.flow.write_paused or self.transport.is_closing():
                return False
            limit = self.limit_concurrency
            if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
                return False  # uvicorn answers the 503
            length = None
            for name, value in self.headers:
                if name == b"content-length":
                    if length is not None or not value.isdigit():
                        return False  # a second or odd Content-Length: uvicorn's checks
                    length = int(value)
                elif name == b"transfer-encoding":
                    return False
            return length is None or length <= MAX_BODY

        def _fast_started(self) -> None:
            disarm = getattr(self, "_disarm", None)  # the header deadline's, when wrapped
            if disarm is not None:
                disarm()

        def on_body(self, body: bytes) -> None:
            if self._fast is None:
                super().on_body(body)
                return
            self._fast_body.append(body)

        def on_message_complete(self) -> None:
            if self._fast is None:
                super().on_message_complete()
                return
            endpoint, keep_alive = self._fast
            self._fast = None
            chunks, self._fast_body = self._fast_body, []
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            held = _Held(keep_alive)
            self.cycle = held  # uvicorn queues what arrives meanwhile behind it
            request = Request(self.scope, _receiver(body))
            task = self.loop.create_task(self._fast_run(endpoint, request, held))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        async def _fast_run(self, endpoint: Endpoint, request: Request, held: _Held) -> None:
            try:
                response = await endpoint(request)
            except BaseException:  # endpoints render their own errors: this is a bug
                held.response_complete = True
                log.exception("fast lane: endpoint raised")
                self.transport.close()
                raise
            held.response_complete = True
            if not held.disconnected:
                self._fast_answer(response, held.keep_alive)

        def _fast_answer(self, response: Response, keep_alive: bool) -> None:
            transport = self.transport
            if transport.is_closing():
                return
            out = [STATUS_LINE[response.status_code]]
            for name, value in self.server_state.default_headers:
                out += (name, b": ", value, b"\r\n")
            raw: list[tuple[bytes, bytes]] = response.raw_headers
            for name, value in raw:
                if name == b"connection" and b"close" in value.lower():
                    keep_alive = False
                out += (name, b": ", value, b"\r\n")
            if not keep_alive:
                out.append(b"connection: close\r\n")
            out += (b"\r\n", bytes(response.body))
            transport.write(b"".join(out))
            if not keep_alive:
                transport.close()
            self.on_response_complete()

    FastLane.__name__ = FastLane.__qualname__ = f"FastLane{base.__name__}"
    return FastLane


def _receiver(body: bytes) -> Any:
    message = {"type": "http.request", "body": body, "more_body": False}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:  # read again past the end: what uvicorn says once the response is out
            return {"type": "http.disconnect"}
        sent = True
        return message

    return receive
