"""The prediction log: batched Parquet partitions DuckDB reads, drops counted, nothing lost."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq

from tradeloop.clock import SimulatedClock
from tradeloop.serving.metrics import GatewayMetrics
from tradeloop.serving.predlog import PredictionLog, PredictionRecord

NAMES = ("ret_1", "vol_20")


def record(
    clock: SimulatedClock, i: int, rows: int = 1, names: tuple[str, ...] = NAMES
) -> PredictionRecord:
    x = np.arange(rows * len(names), dtype=np.float32).reshape(rows, len(names)) + i
    return PredictionRecord(
        clock.now(),
        f"req-{i}",
        f"key-{i % 3}",
        "/invocations",
        "demo",
        "1",
        "champion",
        "live",
        names,
        x,
        np.full(rows, 0.5, np.float32),
        1.25,
    )


def query(root: Path, sql: str) -> list[tuple[object, ...]]:
    glob = str(root / "predictions" / "**" / "*.parquet")
    src = f"read_parquet('{glob}', hive_partitioning=true, union_by_name=true)"
    return duckdb.sql(sql.replace("LOG", src)).fetchall()


def test_flush_writes_hive_partitions_duckdb_reads(tmp_path: Path, clock: SimulatedClock) -> None:
    log = PredictionLog(tmp_path, clock, GatewayMetrics(), flush_interval=60)
    log.start()
    for i in range(5):
        log.log(record(clock, i, rows=2))
    clock.advance(timedelta(days=1))
    for i in range(5, 8):
        log.log(record(clock, i))
    assert log.flush(timeout=10)
    days = sorted(p.name for p in (tmp_path / "predictions").iterdir())
    assert days == ["date=2024-03-01", "date=2024-03-02"]
    assert query(tmp_path, "select count(*) from LOG") == [(13,)]
    assert query(tmp_path, "select date::varchar, count(*) from LOG group by 1 order by 1") == [
        ("2024-03-01", 10),
        ("2024-03-02", 3),
    ]
    # per-feature columns, row index within the request, and the request's fields
    rows = query(
        tmp_path,
        "select request_id, row, f_ret_1, f_vol_20, prediction, variant, mode, latency_ms "
        "from LOG where request_id = 'req-1' order by row",
    )
    assert rows == [
        ("req-1", 0, 1.0, 2.0, 0.5, "champion", "live", 1.25),
        ("req-1", 1, 3.0, 4.0, 0.5, "champion", "live", 1.25),
    ]
    one = next((tmp_path / "predictions").rglob("*.parquet"))
    assert pq.read_schema(one).metadata[b"tradeloop.feature_names"] == b"ret_1,vol_20"
    log.close()


def test_versions_with_different_features_share_the_log(
    tmp_path: Path, clock: SimulatedClock
) -> None:
    log = PredictionLog(tmp_path, clock, GatewayMetrics())
    log.log(record(clock, 1))
    log.log(record(clock, 2, names=("ret_1", "rsi_14", "macd")))
    log.close()
    got = query(tmp_path, "select request_id, f_vol_20, f_rsi_14 from LOG order by request_id")
    assert got == [("req-1", 2.0, None), ("req-2", None, 3.0)]


def test_close_writes_everything_queued(tmp_path: Path, clock: SimulatedClock) -> None:
    log = PredictionLog(tmp_path, clock, GatewayMetrics(), flush_interval=60, batch_rows=100)
    log.start()
    for i in range(1_000):
        log.log(record(clock, i))
    log.close()
    assert query(tmp_path, "select count(*), count(distinct request_id) from LOG") == [
        (1_000, 1_000)
    ]
    assert len(list((tmp_path / "predictions").rglob("*.parquet"))) == 10  # batch_rows per file
    assert not list((tmp_path / "predictions").rglob(".*"))  # no temporary files left


def test_a_full_queue_drops_and_counts_never_blocks(tmp_path: Path, clock: SimulatedClock) -> None:
    metrics = GatewayMetrics()
    log = PredictionLog(tmp_path, clock, metrics, max_queue=3)  # writer not started: queue fills
    accepted = [log.log(record(clock, i)) for i in range(10)]
    assert accepted == [True] * 3 + [False] * 7
    assert log.dropped == 7
    assert metrics.registry.get_sample_value("tradeloop_predlog_dropped_total") == 7
    assert metrics.registry.get_sample_value("tradeloop_predlog_queue_depth") == 3
    log.close()
    assert query(tmp_path, "select count(*) from LOG") == [(3,)]
    assert metrics.registry.get_sample_value("tradeloop_predlog_queue_depth") == 0
    assert metrics.registry.get_sample_value("tradeloop_predlog_written_total") == 3


def test_steady_traffic_is_written_once_per_wake_up(tmp_path: Path, clock: SimulatedClock) -> None:
    """A writer that drained "until empty" never slept under load and wrote a tiny file every
    millisecond or two (CPU, GIL and inodes, all for nothing). One file per wake-up instead:
    the writer here wakes only when `flush` asks, while a producer never stops logging."""
    import threading
    import time

    log = PredictionLog(
        tmp_path, clock, GatewayMetrics(), flush_interval=3600.0, batch_rows=10**9
    )  # one file per drain
    log.start()
    stop, progress = threading.Event(), threading.Event()
    sent = 0

    def traffic() -> None:
        nonlocal sent
        while not stop.is_set():
            log.log(record(clock, sent))
            sent += 1
            if sent % 500 == 0:
                progress.set()
            if sent % 20 == 0:
                time.sleep(0.0001)  # pace, not timing: keeps the file small

    producer = threading.Thread(target=traffic)
    producer.start()
    wake_ups = 5
    try:
        for _ in range(wake_ups):  # each flush lands while records keep arriving
            assert progress.wait(30)
            progress.clear()
            assert log.flush()
    finally:
        stop.set()
        producer.join()
    log.close()
    files = list((tmp_path / "predictions").rglob("*.parquet"))
    assert query(tmp_path, "select count(*) from LOG") == [(sent,)]
    assert sent >= 500 * wake_ups
    assert len(files) <= wake_ups + 2  # the wake-ups, the writer's last drain, close's drain


def test_request_fields_follow_their_rows(tmp_path: Path, clock: SimulatedClock) -> None:
    """Columns are buffered per field: each row must still carry its own request's fields."""
    log = PredictionLog(tmp_path, clock, GatewayMetrics())
    expected = []
    for i in range(30):
        variant, version = ("champion", "1") if i % 3 else ("challenger", "2")
        rows = 1 + i % 4
        rec = record(clock, i, rows=rows)._replace(variant=variant, version=version, mode="live")
        log.log(rec)
        expected += [(f"req-{i}", r, variant, version, float(i + 2 * r)) for r in range(rows)]
        clock.advance(timedelta(minutes=1))
    log.close()
    got = query(
        tmp_path,
        "select request_id, row, variant, version, f_ret_1 from LOG order by ts, row",
    )
    assert got == expected


def test_replicas_share_one_folder_each_writing_its_own_files(
    tmp_path: Path, clock: SimulatedClock
) -> None:
    from tradeloop.monitoring.outcomes import read_prediction_log

    shared = tmp_path / "shared" / "predictions"
    logs = [
        PredictionLog(tmp_path / gw, clock, GatewayMetrics(), folder=shared, writer=gw)
        for gw in ("gw-1", "pod/2 é")
    ]
    for n, log in enumerate(logs):
        log.start()
        for i in range(3):
            log.log(record(clock, 10 * n + i))
        log.close()
    names = sorted(p.name for p in shared.rglob("*.parquet"))
    assert [n.rsplit("-", 1)[0] for n in names] == ["part-gw-1", "part-pod_2__"]
    assert not (tmp_path / "gw-1" / "predictions").exists()  # nothing in the replica's home
    both = read_prediction_log(shared, model="demo")
    assert both.height == 6
