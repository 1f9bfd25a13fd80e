"""A direct path from the ASGI server to the prediction endpoints.

A request that goes through Starlette passes two middlewares, the router's regex scan of every
route, and three wrappers before the endpoint runs, and its response is sent through the same
layers back. For a single-row prediction that whole trip cost more than parsing, scoring and
logging it. `GatewayApp` keeps Starlette for everything (routing, lifespan, errors, OpenAPI)
and only looks the prediction routes up first, in a dict by exact path, or by prefix for a
route whose one parameter is its last segment:

    POST /invocations                  exact
    POST /v2/models/demo/infer         exact, with {name} fixed to the served model's name
    GET  /v1/signals/S01               prefix "/v1/signals/", symbol="S01"

The endpoints are the same functions Starlette would call (`Gateway.endpoint` wrappers: they
never raise, they render every error in their protocol's shape), so both paths answer alike; a
path the table does not hold (another model's name, a version's route) goes to Starlette.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Endpoint = Callable[[Request], Awaitable[Response]]


class HotRoutes:
    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], tuple[Endpoint, dict[str, str]]] = {}
        self._prefix: list[tuple[str, str, str, Endpoint, dict[str, str]]] = []

    def add(self, route: Route, fixed: Mapping[str, str] | None = None) -> None:
        """Take `route` with its parameters from `fixed`; at most one may stay open, and only
        as the last path segment (`/v1/signals/{symbol}`)."""
        fixed = dict(fixed or {})
        params = {k: v for k, v in fixed.items() if k in route.param_convertors}
        open_ = [p for p in route.param_convertors if p not in params]
        methods = sorted(m for m in route.methods or () if m != "HEAD")  # HEAD: Starlette
        if not open_:
            path = str(route.url_path_for(route.name, **params))
            for m in methods:
                self._exact[(m, path)] = (route.endpoint, params)
            return
        template = "{" + open_[0] + "}"
        if len(open_) > 1 or not route.path_format.endswith("/" + template):
            raise ValueError(f"route {route.path}: only a final path parameter can stay open")
        if route.param_convertors[open_[0]].regex != "[^/]+":
            raise ValueError(f"route {route.path}: an open parameter must be a plain str")
        prefix = route.path_format.removesuffix(template)
        if "{" in prefix:
            raise ValueError(f"route {route.path}: fix every parameter but the last")
        for m in methods:
            self._prefix.append((m, prefix, open_[0], route.endpoint, params))

    def match(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]] | None:
        hit = self._exact.get((method, path))
        if hit is not None:
            return hit
        for m, prefix, name, endpoint, params in self._prefix:
            if m == method and path.startswith(prefix):
                rest = path[len(prefix) :]
                if rest and "/" not in rest:
                    return endpoint, {**params, name: rest}
        return None


class GatewayApp(Starlette):
    """Starlette with the prediction routes looked up before its middleware and router."""

    def __init__(self, *, hot: HotRoutes, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hot = hot

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            hit = self.hot.match(scope["method"], scope["path"])
            if hit is not None:
                endpoint, params = hit
                scope["app"] = self
                scope["path_params"] = params
                response = await endpoint(Request(scope, receive))
                await send(
                    {
                        "type": "http.response.start",
                        "status": response.status_code,
                        "headers": response.raw_headers,
                    }
                )
                await send({"type": "http.response.body", "body": response.body})
                return
        await super().__call__(scope, receive, send)


def hot_routes(routes: Iterable[Route], paths: Mapping[str, Mapping[str, str]]) -> HotRoutes:
    """The routes whose templates `paths` names, each with the parameters it fixes."""
    hot = HotRoutes()
    for r in routes:
        if r.path in paths:
            hot.add(r, paths[r.path])
    return hot
