"""Prometheus metrics for the gateway, in a registry of its own (no process-wide globals).

Label children are cached per label tuple: `.labels(...)` builds and hashes a key on every
call, which costs more than the observation itself on the request path.

Under `tradeloop serve --workers N` (N > 1) the values are prometheus-client's multiprocess
files (`worker_metrics`) and `exposition` is every worker's; each gauge says how workers
combine (`multiprocess_mode`, ignored with one worker).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tradeloop.serving import worker_metrics
from tradeloop.serving.bulk_histogram import BulkHistogram

# Fine-grained at the low end: the gateway's budget is a few milliseconds.
LATENCY_BUCKETS = (
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
VALUE_BUCKETS = (
    -0.05,
    -0.02,
    -0.01,
    -0.005,
    0.0,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.3,
    0.4,
    0.45,
    0.5,
    0.55,
    0.6,
    0.7,
    0.8,
    0.9,
    1.0,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST
_REQUEST_LABELS = ("route", "model", "version", "variant", "status")


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.request_duration = Histogram(
            "tradeloop_request_duration_seconds",
            "Time from request start to response, by route and serving variant.",
            _REQUEST_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "tradeloop_requests",
            "Requests by route, variant and HTTP status.",
            _REQUEST_LABELS,
            registry=r,
        )
        multi = worker_metrics.enabled()
        bulk = worker_metrics.MultiprocessBulkHistogram if multi else BulkHistogram
        self.prediction_value = bulk(
            "tradeloop_prediction_value",
            "Predicted values (probability of up, or return) per variant.",
            ("model", "version", "variant", "mode"),
            buckets=VALUE_BUCKETS,
            registry=r,
        )
        self.model_loads = Counter(
            "tradeloop_model_loads", "Model load attempts by result.", ("result",), registry=r
        )
        self.model_info = Gauge(
            "tradeloop_model_loaded",
            "1 for each variant and version being served.",
            ("model", "variant", "version", "mode"),
            registry=r,
            multiprocess_mode="livemax",  # served by some live worker
        )
        self.ready = Gauge(
            "tradeloop_ready",
            "1 when every deployed variant is loaded.",
            registry=r,
            multiprocess_mode="livemin",  # every live worker ready
        )
        self.degraded = Gauge(
            "tradeloop_gateway_degraded",
            "1 while a deployed variant is answered by its last good version instead.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.errors = Counter(
            "tradeloop_gateway_errors",
            "Errors by where they happened (each logged in full once, then counted).",
            ("where",),
            registry=r,
        )
        self.predlog_queue_depth = (worker_metrics.FunctionGauge if multi else Gauge)(
            "tradeloop_predlog_queue_depth",
            "Prediction-log records waiting to be written.",
            registry=r,
            multiprocess_mode="livesum",  # all workers' backlogs
        )
        self.predlog_dropped = Counter(
            "tradeloop_predlog_dropped", "Prediction-log records dropped (queue full).", registry=r
        )
        self.predlog_written = Counter(
            "tradeloop_predlog_written", "Prediction-log rows written to Parquet.", registry=r
        )
        self.predlog_write_errors = Counter(
            "tradeloop_predlog_write_errors", "Failed Parquet batch writes.", registry=r
        )
        self.shadow_dropped = Counter(
            "tradeloop_shadow_dropped",
            "Shadow scorings skipped because the queue was full.",
            registry=r,
        )
        self.shadow_errors = Counter(
            "tradeloop_shadow_errors", "Shadow scorings that raised.", registry=r
        )
        self.input_rows = Counter(
            "tradeloop_input_rows",
            "Scored rows whose features were checked against the model's reference profile.",
            ("model",),
            registry=r,
        )
        self.input_out_of_range = Counter(
            "tradeloop_input_out_of_range",
            "Checked rows with a feature outside the training range (refused ones included).",
            ("model",),
            registry=r,
        )
        self.batch_size = Histogram(
            "tradeloop_batch_size",
            "Requests per onnxruntime run under serving.batching (1: ran alone).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )
        self._req: dict[tuple[str, ...], tuple[Callable[[float], None], Callable[[], None]]] = {}

    def observe_request(
        self, route: str, model: str, version: str, variant: str, status: int, seconds: float
    ) -> None:
        key = (route, model, version, variant, str(status))
        pair = self._req.get(key)
        if pair is None:
            pair = (self.request_duration.labels(*key).observe, self.requests.labels(*key).inc)
            self._req[key] = pair
        pair[0](seconds)
        pair[1]()

    def observe_predictions(
        self, model: str, version: str, variant: str, mode: str, values: np.ndarray
    ) -> None:
        self.prediction_value.observe((model, version, variant, mode), values)

    def exposition(self) -> bytes:
        if worker_metrics.enabled():
            return worker_metrics.aggregate()
        return generate_latest(self.registry)
