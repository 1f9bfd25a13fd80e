"""HTTP plumbing shared by the protocols: JSON responses, errors, bounded bodies.

Every problem a client can cause is an `ApiError` carrying the status and a message that names
it; each protocol renders it in its own error shape (MLflow's `{"error_code", "message"}`,
the Open Inference Protocol's `{"error"}`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive

ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
}
JSON = "application/json"
_JSON_BYTES = JSON.encode()
# An early refusal (413, 415, 401, ...) reads and discards what is left of the body, up to this
# much, before answering: a client still sending (urllib sends `Connection: close`, after which
# the server closes at once) would otherwise see a connection reset instead of the answer.
DRAIN_MAX_BYTES = 64 * 1024 * 1024


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or ERROR_CODES.get(status, "BAD_REQUEST")
        self.headers = headers


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def invalid_value(message: str) -> ApiError:
    """A well-formed request whose data does not fit the model (MLflow's code for this)."""
    return ApiError(400, message, "INVALID_PARAMETER_VALUE")


class JSONResponse(Response):
    """orjson-rendered; numpy floats and arrays serialize natively. Without extra headers
    the two it needs are set directly: Starlette's generic `init_headers` cost a tenth of a
    single-row prediction's own Python time."""

    media_type = JSON

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: Any = None,
    ) -> None:
        if headers or media_type is not None or background is not None:
            super().__init__(content, status_code, headers, media_type, background)
            return
        self.status_code = status_code
        self.background = None
        self.body = body = self.render(content)
        self.raw_headers = [
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", _JSON_BYTES),
        ]

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class RawResponse(Response):
    """Bytes with their headers given as ASGI pairs, skipping Starlette's generic header
    building (a binary v2 answer's extra header went through it on every request)."""

    def __init__(
        self, body: bytes, media_type: bytes, headers: list[tuple[bytes, bytes]], status: int = 200
    ) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", media_type),
            *headers,
        ]


def error_body(exc: ApiError, style: str) -> dict[str, Any]:
    if style == "v2":
        return {"error": exc.message}
    return {"error_code": exc.code, "message": exc.message}


def error_response(exc: ApiError, style: str = "mlflow") -> JSONResponse:
    return JSONResponse(error_body(exc, style), status_code=exc.status, headers=exc.headers)


async def read_body(request: Request, headers: dict[bytes, bytes], limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes whether or not Content-Length says so."""
    raw = headers.get(b"content-length")
    declared = None if raw is None else raw.decode("latin-1")
    if declared is not None:
        if not declared.isdigit():
            raise bad_request(f"Content-Length is not a number: {declared!r}")
        if int(declared) > limit:
            raise ApiError(413, f"body of {declared} bytes is over the limit of {limit} bytes")
    # ASGI's receive directly: Starlette's `Request.stream()` is an async generator around it,
    # which costs a fifth of the whole body read for the one-chunk bodies serving sees.
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise bad_request("client disconnected while sending the body")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"body is over the limit of {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if not chunks:
        return b""
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class BodyReceiver:
    """The ASGI `receive`, remembering whether the body has been read to its end."""

    __slots__ = ("_receive", "done", "started")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.done = False
        self.started = False  # the first receive is what sends `100 Continue`

    async def __call__(self) -> Message:
        self.started = True
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.done = True
        return message


async def drain(receiver: BodyReceiver, headers: dict[bytes, bytes]) -> bool:
    """Discard the rest of the body before an error answer; False when it is over
    `DRAIN_MAX_BYTES` (declared or counted) and the connection should close instead.

    A client waiting for `100 Continue` has sent nothing yet: it gets the answer instead, and
    the connection closes rather than read a body it would then send for nothing."""
    if not receiver.started and headers.get(b"expect", b"").lower() == b"100-continue":
        return False
    declared = headers.get(b"content-length", b"")
    if declared.isdigit() and int(declared) > DRAIN_MAX_BYTES:
        return False
    seen = 0
    while not receiver.done:
        seen += len((await receiver()).get("body", b""))
        if seen > DRAIN_MAX_BYTES:
            return False
    return True


async def discard_body(request: Request) -> bool:
    """`drain` for a request nothing has read yet (an unmatched route)."""
    receiver = BodyReceiver(request.receive)
    return await drain(receiver, dict(request.scope["headers"]))


def parse_json(body: bytes) -> Any:
    if not body:
        raise bad_request("the body is empty; expected a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from exc


def media_type(headers: dict[bytes, bytes]) -> tuple[str, dict[str, str]]:
    """`application/json; charset=utf-8` -> ("application/json", {"charset": "utf-8"}).
    The params are the caller's to change (a new dict each call)."""
    raw_bytes = headers.get(b"content-type", b"")
    known = _MEDIA_TYPES.get(raw_bytes)
    if known is not None:
        return known[0], dict(known[1])
    parsed = _parse_media_type(raw_bytes.decode("latin-1"))
    if len(_MEDIA_TYPES) < 256:  # clients send a handful of spellings; bound what we keep
        _MEDIA_TYPES[raw_bytes] = parsed
    return parsed[0], dict(parsed[1])


_MEDIA_TYPES: dict[bytes, tuple[str, dict[str, str]]] = {}


def _parse_media_type(raw: str) -> tuple[str, dict[str, str]]:
    mime, _, rest = raw.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        k, sep, v = part.strip().partition("=")
        if sep:
            params[k.strip().lower()] = v.strip().strip('"')
    return mime.strip().lower(), params


def require_json(headers: dict[bytes, bytes]) -> None:
    mime, params = media_type(headers)
    if mime != JSON:
        got = mime or "none"
        raise ApiError(415, f"Content-Type must be application/json, got {got}")
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ApiError(415, f"only UTF-8 is supported, got charset={charset}")


async def send_json(send: Callable[[Any], Awaitable[None]], status: int, data: bytes) -> None:
    """A whole JSON response (already encoded) on a raw ASGI `send`, for the thin ASGI layers
    that answer before or beside the app (pipeline routing, worker siblings)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(data)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
