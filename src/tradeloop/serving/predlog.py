"""The prediction log: every scored row, written to Parquet off the request path.

The request path only appends one small record per request to a bounded queue (a full queue
counts a drop instead of blocking); a writer thread expands requests into rows and writes
batches as hive partitions that DuckDB and the monitor read directly:

    <root>/predictions/date=YYYY-MM-DD/part-<uuid>.parquet

Each feature is its own column `f_<name>` (drift is computed per feature, and DuckDB reads only
the columns a query names). Model versions may have different features; read with
`read_parquet('<root>/predictions/**/*.parquet', hive_partitioning=true, union_by_name=true)`.
Files appear atomically (written under a dot-name, then renamed), so a reader never sees half.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tradeloop.clock import Clock
from tradeloop.serving.metrics import GatewayMetrics

log = logging.getLogger(__name__)

FEATURE_PREFIX = "f_"


class PredictionRecord(NamedTuple):
    """One scored request (one or more rows) as the request path hands it over."""

    ts: datetime
    request_id: str
    key: str
    route: str
    model: str
    version: str
    variant: str
    mode: str  # "live" (answered the client) or "shadow"
    feature_names: tuple[str, ...]
    features: np.ndarray  # [N, n_features] float32
    predictions: np.ndarray  # [N] float32
    latency_ms: float


class PredictionLog:
    """A bounded in-memory queue and one writer thread.

    The queue is a `deque` with an explicit bound rather than `queue.Queue`: `put` on the
    latter notifies the consumer, so a writer thread would wake, take the GIL and delay the
    event loop once per request. Here the writer wakes every `flush_interval` (or on
    `flush`/`close`) and takes everything at once.
    """

    def __init__(
        self,
        root: str | Path,
        clock: Clock,
        metrics: GatewayMetrics,
        *,
        max_queue: int = 100_000,
        batch_rows: int = 20_000,
        flush_interval: float = 1.0,
    ) -> None:
        self.dir = Path(root) / "predictions"
        self.clock = clock
        self.metrics = metrics
        self.max_queue = max_queue
        self.batch_rows = batch_rows
        self.flush_interval = flush_interval
        self._q: deque[PredictionRecord] = deque()
        self._lock = threading.Lock()
        self._accepted = 0  # records queued
        self._handled = 0  # records written (or lost to a write error)
        self._done = threading.Condition(threading.Lock())
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        metrics.predlog_queue_depth.set_function(lambda: len(self._q))

    # ------------------------------------------------------------------ request path

    def log(self, record: PredictionRecord) -> bool:
        """Queue a record; never blocks. False (and a counted drop) when the queue is full."""
        with self._lock:  # the event loop and the shadow worker both log
            if len(self._q) >= self.max_queue:
                self.dropped += 1
                self.metrics.predlog_dropped.inc()
                return False
            self._q.append(record)
            self._accepted += 1
        return True

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is None:
            _warm_up()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="tradeloop-predlog", daemon=True)
            self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record queued before this call is on disk (or failed to write)."""
        with self._lock:
            target = self._accepted
        if self._thread is None:
            self._drain()
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._done:
            while self._handled < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Stop the writer once it has written everything queued (graceful shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._drain()

    # ------------------------------------------------------------------ writer

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self._drain()
        self._drain()

    def _drain(self) -> None:
        """Write everything queued now, `batch_rows` rows per file at most."""
        q = self._q
        while q:
            batch: list[PredictionRecord] = []
            rows = 0
            while q and rows < self.batch_rows:
                rec = q.popleft()
                batch.append(rec)
                rows += len(rec.predictions)
            self._write(batch)
            with self._done:
                self._handled += len(batch)
                self._done.notify_all()

    def _write(self, batch: list[PredictionRecord]) -> None:
        groups: dict[tuple[date, tuple[str, ...]], list[PredictionRecord]] = {}
        for rec in batch:
            groups.setdefault((rec.ts.date(), rec.feature_names), []).append(rec)
        for (day, names), recs in groups.items():
            try:
                self._write_file(day, names, recs)
                self.metrics.predlog_written.inc(sum(len(r.predictions) for r in recs))
            except Exception:  # a full disk must not kill the writer; count and go on
                log.exception("prediction log: failed to write %d records", len(recs))
                self.metrics.predlog_write_errors.inc()

    def _write_file(self, day: date, names: tuple[str, ...], recs: list[PredictionRecord]) -> None:
        table = to_table(names, recs)
        folder = self.dir / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"part-{uuid.uuid4().hex}.parquet"
        tmp = folder / f".{final.name}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, final)


def _warm_up() -> None:
    """Build and encode one table before serving: pyarrow's first use imports and compiles for
    about a second, and in the writer thread that would hold the GIL while requests wait."""
    rec = PredictionRecord(
        datetime.now(UTC),
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        ("x",),
        np.zeros((1, 1), np.float32),
        np.zeros(1, np.float32),
        0.0,
    )
    pq.write_table(to_table(("x",), [rec]), pa.BufferOutputStream(), compression="zstd")


def _stack(arrays: list[np.ndarray], rows: int, width: int) -> np.ndarray:
    """Many small float32 arrays to one [rows, width] array. Joining their buffers is ~30x
    faster than `np.concatenate` for one-row arrays, and this runs in the writer thread,
    where every microsecond holding the GIL is a microsecond the event loop may wait."""
    try:
        joined = b"".join(arrays)  # type: ignore[arg-type]  # ndarrays are buffers
        if len(joined) == rows * width * 4:
            return np.frombuffer(joined, np.float32).reshape(rows, width)
    except (BufferError, TypeError):  # a non-contiguous array
        pass
    parts = [np.asarray(a, np.float32).reshape(-1, width) for a in arrays]
    return np.concatenate(parts) if parts else np.zeros((0, width), np.float32)


def to_table(names: tuple[str, ...], recs: list[PredictionRecord]) -> pa.Table:
    """Records (one per request, one or more rows each) to one row per prediction.

    Columns are built once per batch from the transposed records; multi-row requests repeat
    their request-level fields with a vectorized `take`, not a Python loop per row.
    """
    # one comprehension per field: far faster than zip(*recs) over thousands of records
    ts, request_id, key = [r.ts for r in recs], [r.request_id for r in recs], [r.key for r in recs]
    route, model, version = (
        [r.route for r in recs],
        [r.model for r in recs],
        [r.version for r in recs],
    )
    variant, mode, latency = (
        [r.variant for r in recs],
        [r.mode for r in recs],
        [r.latency_ms for r in recs],
    )
    features, preds = [r.features for r in recs], [r.predictions for r in recs]
    counts = np.fromiter(map(len, preds), np.int64, len(recs))
    total = int(counts.sum())
    idx = None if total == len(recs) else np.repeat(np.arange(len(recs)), counts)

    def col(values: Any, typ: pa.DataType) -> pa.Array:
        arr = pa.array(values, typ)
        return arr if idx is None else arr.take(idx)

    starts = np.cumsum(counts) - counts
    rows = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
    feats = _stack(features, total, len(names))
    cols: dict[str, pa.Array] = {
        "ts": col(ts, pa.timestamp("us", tz="UTC")),
        "request_id": col(request_id, pa.string()),
        "row": pa.array(rows.astype(np.int32)),
        "key": col(key, pa.string()),
        "route": col(route, pa.string()),
        "model": col(model, pa.string()),
        "version": col(version, pa.string()),
        "variant": col(variant, pa.string()),
        "mode": col(mode, pa.string()),
        "prediction": pa.array(_stack(preds, total, 1).reshape(-1).astype(np.float64)),
        "latency_ms": col(latency, pa.float64()),
    }
    for i, name in enumerate(names):
        cols[FEATURE_PREFIX + name] = pa.array(feats[:, i].astype(np.float64))
    meta = {b"tradeloop.feature_names": ",".join(names).encode()}
    return pa.table(cols).replace_schema_metadata(meta)
