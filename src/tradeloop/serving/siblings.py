"""Online features shared by the workers of `tradeloop serve --workers N`.

Each worker keeps the trading endpoints' online state in its own memory, as one gateway does;
what keeps the workers equal is that every bar reaches every worker. Each worker also listens
on a private loopback port (bound by the supervisor, so it survives the worker's restarts and
a request sent while the worker restarts waits in the backlog). A `POST .../v1/bars` on the
shared port is applied here first; when it succeeded, the same body and headers (the token
too: a sibling checks it again) go to every sibling's private port, and the client gets its
answer once they all answered, so a signal read from any worker afterwards sees the bar. A
resend is safe (a bar not after its symbol's last one is skipped), so a forward whose kept-alive
connection broke is sent once more. A sibling that does not answer within `FORWARD_TIMEOUT` is
logged and counted (`tradeloop_gateway_errors_total{where="worker_forward"}`); the bar stays
applied where it was.

A restarted worker first copies a live sibling's online state (`GET STATE_PATH` on its private
port) instead of trusting the saved file, which only worker 0 writes and only every few
seconds. The private port serves the whole gateway, with no TLS (loopback only).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import httpx
import uvicorn
from anyio import to_thread

from tradeloop.serving.http import send_json
from tradeloop.serving.worker_context import WorkerInfo

if TYPE_CHECKING:
    from starlette.applications import Starlette

log = logging.getLogger(__name__)

__all__ = ["STATE_PATH", "Siblings"]

STATE_PATH = "/_tradeloop/worker/online-state"
FORWARD_TIMEOUT = 5.0  # seconds for every sibling to answer a forwarded batch of bars
STATE_TIMEOUT = 5.0
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
_STALE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
_HOP = {b"host", b"content-length", b"connection", b"transfer-encoding", b"keep-alive"}


class _QuietServer(uvicorn.Server):
    """The private listener: stopped by its gateway's lifespan, never by a signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


class Siblings:
    """ASGI wrapper around a gateway (one pipeline's or `PipelinesApp`) for one worker."""

    def __init__(self, app: Any, worker: WorkerInfo, private: socket.socket) -> None:
        self.app = app
        self.state = app.state  # uvicorn_config reads app.state
        self.worker = worker
        self.private = private
        self.limit = int(app.state.gateway.serving.max_body_bytes)
        self.errors = app.state.gateway.errors
        self._client: httpx.AsyncClient | None = None
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    def _trading(self) -> dict[str, Any]:
        """Pipeline name ('' alone) -> its trading protocol, for the pipelines that have one."""
        apps = getattr(self.app, "apps", None) or {"": self.app}
        found = {n: a.state.protocols.get("trading") for n, a in apps.items()}
        return {n: p for n, p in found.items() if p is not None}

    def _is_private(self, scope: Scope) -> bool:
        server = scope.get("server")
        return server is not None and server[1] == self.worker.private_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if path.endswith("/v1/bars") and scope["method"] == "POST":
                if not self._is_private(scope):
                    await self._fan_out(scope, receive, send)
                    return
            elif path == STATE_PATH and self._is_private(scope):
                doc = await to_thread.run_sync(self._state_doc)
                await send_json(send, 200, json.dumps(doc).encode())  # json: NaN as the file has it
                return
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _fan_out(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Apply here, forward to the siblings when it succeeded, then answer."""
        chunks, size, more = [], 0, True
        while more and size <= self.limit:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = bool(message.get("more_body"))
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": more}

        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, replay, hold)
        if not more and held and held[0].get("status") == 200:
            await self._forward(scope, body)
        for message in held:
            await send(message)

    async def _forward(self, scope: Scope, body: bytes) -> None:
        if self._client is None or not self.worker.sibling_ports:
            return
        headers = [(k, v) for k, v in scope["headers"] if k not in _HOP]
        query = scope.get("query_string", b"")
        target = scope["path"] + (f"?{query.decode('latin-1')}" if query else "")

        async def one(port: int) -> None:
            assert self._client is not None
            url = f"http://127.0.0.1:{port}{target}"
            try:
                try:
                    r = await self._client.post(url, content=body, headers=headers)
                except _STALE:  # a kept-alive connection the sibling had closed
                    r = await self._client.post(url, content=body, headers=headers)
                if r.status_code != 200:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
            except (httpx.HTTPError, RuntimeError) as exc:
                self.errors.report(
                    "worker_forward", exc, f"bars not applied on the worker at port {port}"
                )

        await asyncio.gather(*(one(p) for p in self.worker.sibling_ports))

    def _state_doc(self) -> dict[str, Any]:
        docs = {}
        for name, proto in self._trading().items():
            with proto.lock:
                docs[name] = proto.state.to_doc()
        return docs

    async def _catch_up(self) -> None:
        """A restarted worker: copy a live sibling's online state (else keep the saved one)."""
        trading = self._trading()
        if not trading or self._client is None:
            return
        for port in self.worker.sibling_ports:
            try:
                r = await self._client.get(f"http://127.0.0.1:{port}{STATE_PATH}")
                r.raise_for_status()
                docs = r.json()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning(
                    "worker %d: no online state from port %d: %s", self.worker.index, port, exc
                )
                continue

            def load(docs: dict[str, Any] = docs, port: int = port) -> None:
                for name, proto in trading.items():
                    if name in docs:
                        with proto.lock:
                            proto.state.load_doc(
                                docs[name], f"worker port {port}", proto.bounds.prune
                            )

            await to_thread.run_sync(load)
            log.info("worker %d: online state copied from port %d", self.worker.index, port)
            return

    async def _started(self) -> None:
        self._client = httpx.AsyncClient(timeout=FORWARD_TIMEOUT, trust_env=False)
        if self.worker.catch_up:
            await self._catch_up()
        from tradeloop.serving.server import uvicorn_config

        port = self.worker.private_port
        app = cast("Starlette", self)  # an ASGI app with .state, all uvicorn_config reads
        config = uvicorn_config(app, "127.0.0.1", port, lifespan="off", log_config=None)
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self.private]))
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)

    async def _stopping(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 15)
        if self._client is not None:
            await self._client.aclose()

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                await self._started()
            await send(message)

        async def receive_() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await self._stopping()
            return message

        await self.app(scope, receive_, send_)
