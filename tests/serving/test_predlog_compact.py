from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from tradeloop.serving.predlog_compact import compact


def _part(folder: Path, i: int, extra: bool = False) -> None:
    cols = {"request_id": [f"r{i}a", f"r{i}b"], "prediction": [0.1 * i, 0.2 * i]}
    if extra:
        cols["f_new"] = [1.0, 2.0]  # a later model version with another feature
    pq.write_table(pa.table(cols), folder / f"part-{i:04d}.parquet")


def test_compaction_keeps_every_row_once_and_leaves_one_file(tmp_path: Path) -> None:
    day = tmp_path / "date=2024-01-01"
    day.mkdir()
    for i in range(10):
        _part(day, i, extra=i >= 7)
    other = tmp_path / "date=2024-01-02"
    other.mkdir()
    for i in range(3):
        _part(other, 100 + i)
    before = duckdb.sql(
        f"select request_id, prediction from read_parquet('{tmp_path}/**/*.parquet',"
        " union_by_name=true) order by 1"
    ).fetchall()
    assert compact(tmp_path, min_parts=8) == 10
    assert len(list(day.glob("*.parquet"))) == 1 and len(list(other.glob("*.parquet"))) == 3
    after = duckdb.sql(
        f"select request_id, prediction from read_parquet('{tmp_path}/**/*.parquet',"
        " union_by_name=true) order by 1"
    ).fetchall()
    assert after == before
    merged = pq.read_table(next(day.glob("*.parquet")))
    assert merged.num_rows == 20 and "f_new" in merged.column_names
    assert compact(tmp_path, min_parts=8) == 0  # idempotent
