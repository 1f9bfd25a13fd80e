"""Shadow scoring: a copy of each live request goes to shadow variants, off the request path.

The client gets the live answer at once; a worker thread scores the copy and logs it with
mode "shadow", so the monitor can compare the two on the same requests. A full queue skips
the copy (counted) rather than slowing the live path. A traced request's copy carries the
request's span, and its `shadow.score` span is a child of it (the same trace), though it
ends after the response.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import datetime
from typing import Any

import numpy as np

from tradeloop.background import Worker
from tradeloop.observability import tracing
from tradeloop.serving.metrics import GatewayMetrics
from tradeloop.serving.models import Served
from tradeloop.serving.predlog import PredictionLog, PredictionRecord

log = logging.getLogger(__name__)

# served, rows, time, request id, key, route, the request's span context (None: untraced)
_Job = tuple[Served, np.ndarray, datetime, str, str, str, Any]


class ShadowScorer:
    """Like the prediction log, a bounded deque drained by a thread that wakes on a timer
    (no per-request wake-up), scoring each model's queued copies in one batched call."""

    def __init__(
        self,
        predlog: PredictionLog,
        metrics: GatewayMetrics,
        *,
        max_queue: int = 10_000,
        interval: float = 0.02,
    ) -> None:
        self.predlog = predlog
        self.metrics = metrics
        self.max_queue = max_queue
        self.interval = interval
        self._q: deque[_Job] = deque()
        self._idle = threading.Event()
        self._idle.set()
        self._worker = Worker(self._drain, name="tradeloop-shadow", interval=interval)
        self.scored = 0

    def submit(
        self,
        shadows: list[Served],
        x: np.ndarray,
        ts: datetime,
        request_id: str,
        key: str,
        route: str,
        parent: Any = None,
    ) -> None:
        """Queue a copy for each shadow; `parent` is `tracing.parent_context()` of the request."""
        for served in shadows:
            if len(self._q) >= self.max_queue:
                self.metrics.shadow_dropped.inc()
                continue
            self._idle.clear()
            self._q.append((served, x, ts, request_id, key, route, parent))

    def start(self) -> None:
        self._worker.start()

    def close(self, timeout: float = 10.0) -> None:
        """Score what is queued, then stop (before the prediction log closes)."""
        self._worker.stop(timeout)
        self._drain()

    def join(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is scored and logged."""
        self._worker.wake()
        return self._idle.wait(timeout)

    def _drain(self) -> None:
        jobs: list[_Job] = []
        while self._q:
            jobs.append(self._q.popleft())
        by_model: dict[int, list[_Job]] = {}
        for job in jobs:
            by_model.setdefault(id(job[0]), []).append(job)
        for group in by_model.values():
            try:
                self._score(group)
            except Exception:  # a broken shadow model must never affect anything else
                self.metrics.shadow_errors.inc(len(group))
                log.exception("shadow scoring failed")
        if not self._q:
            self._idle.set()

    def _score(self, jobs: list[_Job]) -> None:
        served = jobs[0][0]
        model = served.model
        t0 = time.perf_counter()
        start_ns = time.time_ns()
        x = np.concatenate([j[1] for j in jobs]) if len(jobs) > 1 else jobs[0][1]
        error: BaseException | None = None
        try:
            y = model.predict(x)
        except Exception as exc:
            error = exc
            raise
        finally:
            self._spans(jobs, start_ns, time.time_ns(), error, len(x))
        latency_ms = (time.perf_counter() - t0) * 1000.0 / len(jobs)
        self.metrics.observe_predictions(
            model.model_name, model.version, served.variant, "shadow", y
        )
        start = 0
        for _, xj, ts, request_id, key, route, _ in jobs:
            n = len(xj)
            self.predlog.log(
                PredictionRecord(
                    ts,
                    request_id,
                    key,
                    route,
                    model.model_name,
                    model.version,
                    served.variant,
                    "shadow",
                    model.feature_names,
                    xj,
                    y[start : start + n],
                    latency_ms,
                )
            )
            start += n
        self.scored += len(jobs)

    @staticmethod
    def _spans(
        jobs: list[_Job], start_ns: int, end_ns: int, error: BaseException | None, rows: int
    ) -> None:
        """One `shadow.score` span in each traced request's trace, over the batched call."""
        if tracing.tracer() is None:
            return
        for served, _x, _ts, request_id, _key, _route, parent in jobs:
            tracing.record_span(
                "shadow.score",
                parent,
                start_ns,
                end_ns,
                error,
                **{
                    "tradeloop.version": served.model.version,
                    "tradeloop.variant": served.variant,
                    "tradeloop.request_id": request_id,
                    "tradeloop.batch_rows": rows,
                },
            )
