"""`--metrics-port` for the commands that train (`train`, `job run`): a training's progress
on Prometheus `/metrics` while it runs (`training.run_metrics`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from tradeloop.cli._common import err

if TYPE_CHECKING:
    from tradeloop.training.run_metrics import TrainingMetrics

__all__ = ["TrainMetricsHostOpt", "TrainMetricsLingerOpt", "TrainMetricsPortOpt", "serving"]

TrainMetricsPortOpt = Annotated[
    int,
    typer.Option(
        "--metrics-port",
        help="Serve Prometheus /metrics (phase, phase durations, folds, trials, last success) "
        "on this port while training; 0: off.",
        min=0,
        max=65535,
    ),
]
TrainMetricsHostOpt = Annotated[
    str, typer.Option("--metrics-host", help="Interface for --metrics-port.")
]
TrainMetricsLingerOpt = Annotated[
    float,
    typer.Option(
        "--metrics-linger",
        help="With --metrics-port: keep serving this many seconds after the run ends, so a "
        "scrape sees its outcome.",
        min=0.0,
    ),
]


@contextlib.contextmanager
def serving(pipeline: str, host: str, port: int, linger: float) -> Iterator[TrainingMetrics | None]:
    """A `TrainingMetrics` served on host:port for the block (None when `port` is 0); the
    outcome is recorded as the block ends, then the server lingers and closes."""
    if port == 0:
        yield None
        return
    from prometheus_client import CollectorRegistry

    from tradeloop.clock import WallClock
    from tradeloop.observability.metrics_http import serve_metrics
    from tradeloop.training.run_metrics import TrainingMetrics

    registry = CollectorRegistry(auto_describe=True)
    metrics = TrainingMetrics(registry, pipeline)
    server = serve_metrics(registry, host, port)
    err.print(f"metrics on http://{host}:{server.port}/metrics")
    ok = False
    try:
        yield metrics
        ok = True
    finally:
        metrics.finish(ok)
        WallClock().sleep(linger)
        server.close()
