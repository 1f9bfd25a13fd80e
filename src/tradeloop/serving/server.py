"""Build the gateway from its collaborators and run it under uvicorn.

    app = build_app(store, "mymodel", DirectorySource("models/"), state_dir="state/")
    serve(app, host="127.0.0.1", port=8080)

uvicorn uses uvloop and httptools when they are installed (several times faster than asyncio
plus h11 for small requests), and plain asyncio/h11 otherwise.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import uvicorn
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from tradeloop.clock import Clock
from tradeloop.evaluation.positions import PositionRule, Task
from tradeloop.serving import worker_context
from tradeloop.serving.app import Listener, create_app
from tradeloop.serving.auth import Auth
from tradeloop.serving.connections import connection_options, default_http
from tradeloop.serving.error_log import ErrorLog
from tradeloop.serving.gateway import Gateway
from tradeloop.serving.last_good import LastGood
from tradeloop.serving.metrics import GatewayMetrics
from tradeloop.serving.models import ModelManager
from tradeloop.serving.predlog import PredictionLog
from tradeloop.serving.protocol import ProtocolFactory, ProtocolOptions
from tradeloop.serving.protocol_registry import PROTOCOLS
from tradeloop.serving.router import Router
from tradeloop.serving.shadow import ShadowScorer
from tradeloop.serving.source import ModelSource
from tradeloop.spec import BacktestSpec, FeatureSpec, ServingSpec
from tradeloop.store import Store
from tradeloop.store.gateway_reports import record_serving

log = logging.getLogger(__name__)


def build_app(
    store: Store,
    model_name: str,
    source: ModelSource,
    *,
    state_dir: str | Path,
    clock: Clock | None = None,
    serving: ServingSpec | None = None,
    backtest: BacktestSpec | None = None,
    features: list[FeatureSpec] | None = None,
    task: Task = "classification",
    protocols: Mapping[str, ProtocolFactory] | None = None,
    poll_interval: float = 2.0,
    predlog_queue: int = 100_000,
    predlog_batch_rows: int = 20_000,
    predlog_flush_interval: float = 1.0,
    shadow_queue: int = 10_000,
    token_cache_ttl: float = 5.0,
    registry: CollectorRegistry | None = None,
    gateway_id: str | None = None,
    predictions_dir: str | Path | None = None,
    grpc_port: int | None = None,
    grpc_host: str = "127.0.0.1",
    sticky_units: Sequence[str] = (),
    metrics: GatewayMetrics | None = None,
) -> Starlette:
    """The gateway for one registered model.

    `features` (the spec's) turns on the trading endpoints; their online state is kept in
    `<state_dir>/online_features.json` across restarts, and their positions follow
    `backtest`'s thresholds for a model of `task`, as the backtest's do (BadInput when they do
    not fit the task). `protocols`: name -> factory (default: every registered protocol).
    Predictions go to `predictions_dir` (default `<state_dir>/predictions/`; a shared folder for
    replicas: each writes its own files, named by `gateway_id`), the last good model of each variant to
    `<state_dir>/last_good/`. What it serves is recorded in the store under `gateway_id`
    (default: the host name) for `tradeloop status`. `app.state.gateway` exposes the parts.
    `grpc_port` (default: the spec's `serving.grpc_port`) also serves the Open Inference
    Protocol over gRPC on `grpc_host`, started and stopped with the app
    (`app.state.grpc`, whose `port` is the bound one).
    `sticky_units`: the known units (symbols) the router ranks instead of hashing.
    `metrics`: series shared with other gateways in this process (one per pipeline); by
    default the gateway makes its own in `registry`.
    """
    clock = clock or store.clock
    serving = serving or ServingSpec()
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    metrics = metrics if metrics is not None else GatewayMetrics(registry)
    errors = ErrorLog(lambda where: metrics.errors.labels(where).inc())
    gateway_id = gateway_id or socket.gethostname()
    worker = worker_context.current()  # one of `serve --workers N`: its own files and report
    if worker is not None:
        gateway_id = worker.suffix(gateway_id)
    predlog = PredictionLog(
        state,
        clock,
        metrics,
        max_queue=predlog_queue,
        batch_rows=predlog_batch_rows,
        flush_interval=predlog_flush_interval,
        folder=predictions_dir,
        writer=gateway_id,
    )
    gw = Gateway(
        model_name=model_name,
        manager=ModelManager(
            store,
            model_name,
            source,
            metrics,
            poll_interval=poll_interval,
            last_good=LastGood(state / "last_good"),
            errors=errors,
            reporter=lambda report: record_serving(store, gateway_id, report),
        ),
        router=Router(units=sticky_units),
        predlog=predlog,
        shadow=ShadowScorer(predlog, metrics, max_queue=shadow_queue),
        metrics=metrics,
        auth=Auth(
            store,
            ttl=token_cache_ttl,
            stale_limit=serving.token_stale_limit.total_seconds(),
            errors=errors,
        ),
        clock=clock,
        serving=serving,
    )
    options = ProtocolOptions(
        rule=PositionRule.for_task(backtest or BacktestSpec(), task),
        features=tuple(features or ()),
        state_dir=state,
        save_state=worker is None or worker.primary,  # one writer of online_features.json
    )
    factories = PROTOCOLS if protocols is None else protocols
    speaking = [p for f in factories.values() if (p := f(gw, options)) is not None]
    port = grpc_port if grpc_port is not None else serving.grpc_port
    if worker is not None and not worker.primary:
        port = None  # gRPC: worker 0 only (its port is not shared, see serving/workers.py)
    listeners: list[Listener] = []
    if port is not None:
        from tradeloop.serving.grpc import GrpcServer  # grpc loads only when asked for

        listeners.append(GrpcServer(gw, grpc_host, port))
    app = create_app(gw, speaking, listeners)
    app.state.grpc = listeners[0] if listeners else None
    return app


def uvicorn_config(app: Starlette, host: str, port: int, **overrides: object) -> uvicorn.Config:
    """Fast defaults: uvloop and httptools when present, no access log (metrics cover it), and
    the gateway's connection limits (`connections`: header deadline, idle timeout, maximum
    connections from `deployment.serving`)."""
    http = overrides.pop("http", default_http())
    kwargs: dict[str, object] = {
        "host": host,
        "port": port,
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http": http,
        "access_log": False,
        "log_level": "warning",
        "lifespan": "on",
        "timeout_graceful_shutdown": 10,
        "server_header": False,
    }
    gw = getattr(app.state, "gateway", None)
    if isinstance(gw, Gateway) and isinstance(http, str) and http in ("httptools", "h11"):
        kwargs.update(connection_options(gw.serving, http, app))
    kwargs.update(overrides)
    return uvicorn.Config(app, **kwargs)  # type: ignore[arg-type]  # kwargs: dict[str, object]


class GracefulServer(uvicorn.Server):
    """uvicorn, except that a stop signal ends `run()` normally.

    uvicorn re-raises SIGINT/SIGTERM once its graceful shutdown is done, so the process dies of
    the signal before its caller's own cleanup runs (`tradeloop up` stops its controllers and
    releases their leases after the gateway). Here the signal only asks for the shutdown.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve(
    app: Starlette,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    freeze_gc: bool = True,
    switch_interval: float = 0.001,
    **overrides: object,
) -> None:
    """Run until SIGINT/SIGTERM; shutdown flushes the prediction log before returning.

    `freeze_gc` (the default here, where the gateway owns the process) moves everything
    alive after startup out of the garbage collector's reach, so full collections stay short.
    """
    app.state.freeze_gc = freeze_gc
    # A background thread running Python (the deployment poll, the prediction log's table
    # building) keeps the GIL up to the switch interval before the event loop gets it back:
    # 5 ms by default, a whole latency budget. 1 ms bounds that stall at little cost.
    sys.setswitchinterval(min(sys.getswitchinterval(), switch_interval))
    GracefulServer(uvicorn_config(app, host, port, **overrides)).run()
