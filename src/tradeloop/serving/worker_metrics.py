"""Metrics across the workers of `tradeloop serve --workers N`: prometheus-client's
multiprocess mode.

With `PROMETHEUS_MULTIPROC_DIR` set before a worker imports prometheus-client, every counter,
histogram and gauge value lives in a per-process mmap file there, and `/metrics` on any worker
reads every file (`MultiProcessCollector`): counters and histograms add up across workers,
gauges combine by their `multiprocess_mode` (set in `serving.metrics`). The supervisor gives
each `serve` run a fresh private directory (`fresh_dir`), removes it at exit, and marks a dead
worker's live gauges gone (`mark_dead`). With one worker none of this is on: plain in-memory
values, no file writes on the request path.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest, multiprocess

from tradeloop.serving.bulk_histogram import SMALL

ENV = "PROMETHEUS_MULTIPROC_DIR"

__all__ = [
    "ENV",
    "FunctionGauge",
    "MultiprocessBulkHistogram",
    "aggregate",
    "enabled",
    "fresh_dir",
    "mark_dead",
]
REFRESH_EVERY = 1.0  # seconds between copies of a function gauge's value into its file


def enabled() -> bool:
    """True when this process's metric values are multiprocess files (decided at import of
    prometheus-client by the environment, so it holds for the whole process)."""
    from prometheus_client import values

    return values.ValueClass is not values.MutexValue


def fresh_dir() -> Path:
    """A new empty directory for one `serve` run's metric files (never a shared one: files
    left by another run would be counted in)."""
    return Path(tempfile.mkdtemp(prefix="tradeloop-metrics-"))


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def mark_dead(pid: int, path: Path) -> None:
    """A dead worker's `live*` gauges stop counting (its counters stay: they happened)."""
    multiprocess.mark_process_dead(pid, str(path))


_aggregate: CollectorRegistry | None = None


def aggregate() -> bytes:
    """Every worker's series, combined, in the Prometheus text format."""
    global _aggregate
    if _aggregate is None:
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg, os.environ[ENV])
        _aggregate = reg
    return generate_latest(_aggregate)


class MultiprocessBulkHistogram:
    """`BulkHistogram`'s interface on a prometheus-client `Histogram`, so its values go to the
    multiprocess files: one increment per non-empty bucket per batch, not one per value."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._hist = Histogram(name, documentation, labelnames, buckets=buckets, registry=registry)
        self._list = [float(b) for b in buckets if np.isfinite(b)]
        self._bounds = np.asarray(self._list, np.float64)
        self._children: dict[tuple[str, ...], Histogram] = {}

    def observe(self, labels: tuple[str, ...], values: np.ndarray | Sequence[float]) -> None:
        """Every value under one label set; NaNs are skipped, as `BulkHistogram` skips them."""
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._hist.labels(*labels)
        buckets = child._buckets  # non-cumulative counts, one value per bucket
        if len(values) < SMALL:  # a bisect each beats numpy's call overhead
            for v in values:
                v = float(v)
                if v == v:
                    buckets[bisect.bisect_left(self._list, v)].inc(1)
                    child._sum.inc(v)
            return
        arr = np.asarray(values, np.float64).reshape(-1)
        arr = arr[~np.isnan(arr)]
        if not len(arr):
            return
        per_bucket = np.bincount(
            np.searchsorted(self._bounds, arr, side="left"), minlength=len(self._bounds) + 1
        )
        for i, c in enumerate(per_bucket.tolist()):
            if c:
                buckets[i].inc(c)
        child._sum.inc(float(arr.sum()))


class FunctionGauge(Gauge):
    """A gauge whose `set_function` value is copied into its multiprocess file every
    `REFRESH_EVERY` seconds by a daemon thread (the aggregate reads files, never calls it)."""

    def set_function(self, f: Callable[[], float]) -> None:
        _refreshed.append((self, f))
        self.set(f())
        _start_refresher()


_refreshed: list[tuple[Gauge, Callable[[], float]]] = []
_refresher: threading.Thread | None = None


def _start_refresher() -> None:
    global _refresher
    if _refresher is not None:
        return

    def run() -> None:
        while True:
            time.sleep(REFRESH_EVERY)
            for gauge, f in list(_refreshed):
                with contextlib.suppress(Exception):  # a metric must never stop the worker
                    gauge.set(f())

    _refresher = threading.Thread(target=run, name="metrics-refresh", daemon=True)
    _refresher.start()
