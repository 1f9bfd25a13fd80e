"""The direct path to the prediction routes answers exactly as Starlette's router would."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tradeloop.serving.hot_routes import GatewayApp, HotRoutes, hot_routes

FEATURES = ["ret_1", "ret_5", "vol_20"]


async def _echo(request: Request) -> Response:
    return PlainTextResponse(repr(sorted(request.path_params.items())))


def test_exact_and_prefix_matches() -> None:
    hot = hot_routes(
        [
            Route("/invocations", _echo, methods=["POST"]),
            Route("/v2/models/{name}/infer", _echo, methods=["POST"]),
            Route("/v1/signals/{symbol}", _echo, methods=["GET"]),
            Route("/v2/health/live", _echo),  # not named: stays with Starlette
        ],
        {
            "/invocations": {},
            "/v2/models/{name}/infer": {"name": "demo"},
            "/v1/signals/{symbol}": {},
        },
    )
    assert hot.match("POST", "/invocations") == (_echo, {})
    assert hot.match("POST", "/v2/models/demo/infer") == (_echo, {"name": "demo"})
    assert hot.match("GET", "/v1/signals/S01") == (_echo, {"symbol": "S01"})
    # everything else falls through to the router: other names, methods, deeper paths
    for method, path in [
        ("GET", "/invocations"),
        ("POST", "/v2/models/other/infer"),
        ("GET", "/v1/signals/"),
        ("GET", "/v1/signals/S01/extra"),
        ("HEAD", "/v1/signals/S01"),
        ("GET", "/v2/health/live"),
    ]:
        assert hot.match(method, path) is None, (method, path)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/a/{x}/{y}", "only a final path parameter"),
        ("/a/{x}/b", "only a final path parameter"),
        ("/a/{x:int}", "plain str"),
    ],
)
def test_routes_it_cannot_take_are_refused(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HotRoutes().add(Route(path, _echo))


def _both(app: GatewayApp, method: str, path: str, **kw: Any) -> tuple[httpx.Response, ...]:
    """The same request through the app, and through plain Starlette (the router)."""

    async def router_only(scope: Any, receive: Any, send: Any) -> None:
        await Starlette.__call__(app, scope, receive, send)

    async def go() -> tuple[httpx.Response, ...]:
        out = []
        for asgi in (app, router_only):
            transport = httpx.ASGITransport(app=asgi)  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                out.append(await c.request(method, path, **kw))
        return tuple(out)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("method", "path", "kw"),
    [
        ("POST", "/invocations", {"json": {"inputs": [[0.1, 0.2, 0.3]]}}),
        ("POST", "/invocations", {"json": {"inputs": [[0.1, 0.2]]}}),  # a 400
        ("POST", "/invocations", {"content": b"{", "headers": {"content-type": "text/csv"}}),
        (
            "POST",
            "/v2/models/demo/infer",
            {
                "json": {
                    "inputs": [
                        {"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}
                    ]
                }
            },
        ),
        ("GET", "/v1/signals/NOPE", {}),  # a 404 in the trading shape
    ],
)
def test_hot_and_routed_answers_agree(trading_stack: Any, method: str, path: str, kw: Any) -> None:
    app = trading_stack.app
    assert isinstance(app, GatewayApp) and app.hot.match(method, path) is not None
    hot, routed = _both(app, method, path, **kw)
    assert hot.status_code == routed.status_code
    assert hot.json() == routed.json()
    strip = {"x-request-id", "content-length"}  # ids differ per request
    assert {k: v for k, v in hot.headers.items() if k not in strip} == {
        k: v for k, v in routed.headers.items() if k not in strip
    }
