"""One gateway for every pipeline of a project.

Each pipeline keeps its own single-model gateway (`server.build_app`: its router, prediction
log, last good versions, online state); this app routes to them by path, so one process (or
one fleet of replicas) serves every pipeline:

    /v2/models/{name}/...                  KServe v2, by model name (the pipeline's)
    /models/{name}/invocations             MLflow scoring protocol, which is single-model by
                                           design: one path per pipeline
    /pipelines/{name}/<any route>          everything a one-pipeline gateway serves, trading
                                           endpoints (/v1/...) included, under its prefix
    /v2, /v2/health/live, /healthz         the server's own
    /v2/health/ready, /readyz              ready when every pipeline is
    /metrics                               every pipeline's series (one registry)

A project with one pipeline gets that pipeline's gateway unchanged (plain `/invocations`).
The routing adds a dictionary lookup per request; the sub-gateways' hot paths stay as they are.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from tradeloop.errors import BadInput
from tradeloop.serving.http import send_json
from tradeloop.serving.metrics import GatewayMetrics

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from tradeloop.project import Project
    from tradeloop.registry.mlflow_registry import Registry

__all__ = ["PipelinesApp", "pipelines_app"]

Scope = dict[str, Any]


def pipelines_app(
    pipelines: Sequence[tuple[Project, Registry]],
    *,
    registry: CollectorRegistry | None = None,
    grpc_host: str = "127.0.0.1",
    grpc_port: int | None = None,
    gateway_id: str | None = None,
) -> Any:
    """The gateway for these pipelines: the pipeline's own for one, else a `PipelinesApp`."""
    from tradeloop.serving.mlflow_source import project_app

    if not pipelines:
        raise BadInput("no pipeline to serve")
    if len(pipelines) == 1:
        project, reg = pipelines[0]
        return project_app(
            project,
            reg,
            registry=registry,
            grpc_host=grpc_host,
            grpc_port=grpc_port,
            gateway_id=gateway_id,
        )
    if grpc_port is not None:
        raise BadInput(
            "--grpc-port serves one pipeline: with several, serve gRPC from a gateway per "
            "pipeline (`tradeloop serve --pipeline NAME --grpc-port N`)"
        )
    metrics = GatewayMetrics(registry)
    apps = {
        p.spec.name: project_app(
            p,
            reg,
            registry=metrics.registry,
            metrics=metrics,
            grpc_port=None,
            gateway_id=gateway_id,
        )
        for p, reg in pipelines
    }
    for p, _ in pipelines:  # a spec's serving.grpc_port cannot be shared by several either
        if p.spec.deployment.serving.grpc_port is not None:
            raise BadInput(
                f"pipeline {p.spec.name!r}: deployment.serving.grpc_port is set, but this gateway "
                "serves several pipelines; serve that pipeline on its own for gRPC"
            )
    return PipelinesApp(apps, metrics)


class PipelinesApp:
    """An ASGI app dispatching to one Starlette gateway per pipeline (see the module doc)."""

    def __init__(self, apps: dict[str, Starlette], metrics: GatewayMetrics) -> None:
        self.apps = apps
        self.metrics = metrics
        self.first = next(iter(apps.values()))
        self.state = self.first.state  # uvicorn_config reads app.state

    @property
    def gateways(self) -> dict[str, Any]:
        return {name: app.state.gateway for name, app in self.apps.items()}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.first(scope, receive, send)
            return
        path: str = scope["path"]
        parts = path.split("/", 4)  # ['', a, b, c, rest]
        if len(parts) >= 4 and parts[1] == "v2" and parts[2] == "models":
            await self._to(parts[3], scope, receive, send, path, "v2")
        elif len(parts) == 4 and parts[1] == "models" and parts[3] == "invocations":
            await self._to(parts[2], scope, receive, send, "/invocations", "mlflow")
        elif len(parts) >= 3 and parts[1] == "pipelines":
            rest = "/" + path.split("/", 3)[3] if len(parts) >= 4 else "/"
            await self._to(parts[2], scope, receive, send, rest, "mlflow")
        elif path in ("/v2/health/ready", "/readyz"):
            await self._ready(send, path)
        elif path in ("/v2", "/v2/health/live", "/healthz", "/metrics"):
            await self.first(scope, receive, send)
        elif path == "/v1/retrain" and scope.get("method") == "POST":
            await self._retrain(scope, receive, send)
        elif path == "/invocations":
            await _reply(
                send,
                404,
                {
                    "error_code": "ENDPOINT_NOT_FOUND",
                    "message": "this gateway serves several pipelines: POST to "
                    "/models/{name}/invocations, one of "
                    + ", ".join(f"/models/{n}/invocations" for n in self.apps),
                },
            )
        else:
            await _reply(send, 404, self._not_found(path))

    async def _to(
        self, name: str, scope: Scope, receive: Any, send: Any, path: str, style: str
    ) -> None:
        app = self.apps.get(name)
        if app is None:
            known = ", ".join(sorted(self.apps))
            message = f"no pipeline {name!r} here (pipelines: {known})"
            body = (
                {"error": message}
                if style == "v2"
                else {
                    "error_code": "RESOURCE_DOES_NOT_EXIST",
                    "message": message,
                }
            )
            await _reply(send, 404, body)
            return
        if path != scope["path"]:
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await app(scope, receive, send)

    async def _retrain(self, scope: Scope, receive: Any, send: Any) -> None:
        """`POST /v1/retrain` names its pipeline in the body (`"pipeline"`): forward it there,
        body and all, so a cloud event path needs one URL for every pipeline."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > RETRAIN_BODY_LIMIT:
                await _reply(send, 413, _mlflow_error("request body too large"))
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            doc = json.loads(body or b"{}")
            name = doc.get("pipeline") if isinstance(doc, dict) else None
        except ValueError:
            name = None  # the pipeline's own endpoint says what is wrong with the body
        if not isinstance(name, str) or not name:
            await _reply(
                send,
                400,
                _mlflow_error(
                    'this gateway serves several pipelines: say which in the body ("pipeline": '
                    f"one of {', '.join(sorted(self.apps))}), or POST to "
                    "/pipelines/{name}/v1/retrain"
                ),
            )
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                later: dict[str, Any] = await receive()
                return later
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self._to(name, scope, replay, send, "/v1/retrain", "mlflow")

    async def _ready(self, send: Any, path: str) -> None:
        reports = {n: gw.snapshot.report() for n, gw in self.gateways.items()}
        if path == "/v2/health/ready":
            ready = all(r["ready"] for r in reports.values())
            await _reply(send, 200 if ready else 503, {"ready": ready})
            return
        up = all(r["ready"] or r["degraded"] for r in reports.values())
        await _reply(send, 200 if up else 503, {"ready": up, "pipelines": reports})

    def _not_found(self, path: str) -> dict[str, Any]:
        names = sorted(self.apps)
        return {
            "error_code": "ENDPOINT_NOT_FOUND",
            "message": f"no route {path}: this gateway serves pipelines {', '.join(names)} "
            "under /v2/models/{name}/, /models/{name}/invocations and /pipelines/{name}/",
        }

    async def _lifespan(self, scope: Scope, receive: Any, send: Any) -> None:
        """Start every pipeline's gateway (models, logs) and stop them all at shutdown."""
        message = await receive()
        assert message["type"] == "lifespan.startup"
        async with contextlib.AsyncExitStack() as stack:
            try:
                for app in self.apps.values():
                    app.state.freeze_gc = getattr(self.state, "freeze_gc", False)
                    await stack.enter_async_context(app.router.lifespan_context(app))
            except BaseException as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                raise
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})


RETRAIN_BODY_LIMIT = 64 * 1024


def _mlflow_error(message: str) -> dict[str, str]:
    return {"error_code": "INVALID_PARAMETER_VALUE", "message": message}


async def _reply(send: Any, status: int, body: dict[str, Any]) -> None:
    await send_json(send, status, json.dumps(body).encode())
