"""Dataset snapshots: a content hash of validated bars, stored as Parquet beside its metadata.

The hash covers the values, not the file: rows are put in (symbol, timestamp) order and each
column is hashed as fixed-width bytes (timestamps as UTC microseconds, floats as IEEE-754 with
-0.0 folded into 0.0), so the same bars give the same hash whatever their row order or the
format they came from.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tradeloop.data.simulator import BAR_SCHEMA

HASH_VERSION = "bars-v1"


def content_hash(bars: pl.DataFrame) -> str:
    df = bars.select(list(BAR_SCHEMA)).cast(BAR_SCHEMA).sort("symbol", "timestamp")  # type: ignore[arg-type]  # dict invariance: values are DataTypes
    h = hashlib.sha256(HASH_VERSION.encode())
    h.update(np.int64(df.height).tobytes())
    h.update(df["timestamp"].dt.epoch("us").to_numpy().astype("<i8").tobytes())
    h.update("\x00".join(df["symbol"].to_list()).encode())
    for c in ("open", "high", "low", "close", "volume"):
        v = df[c].to_numpy().astype("<f8") + 0.0  # -0.0 + 0.0 == 0.0
        h.update(v.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class DatasetSnapshot:
    """Where a snapshot of bars is stored and what it covers (named apart from serving's
    routing snapshot)."""

    hash: str
    rows: int
    symbols: list[str]
    start: str
    end: str
    path: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_snapshot(
    bars: pl.DataFrame, root: Path, extra: dict[str, Any] | None = None
) -> DatasetSnapshot:
    """Store bars under `root/<hash>.parquet` (+ .json); idempotent for the same content."""
    root.mkdir(parents=True, exist_ok=True)
    digest = content_hash(bars)
    df = bars.sort("symbol", "timestamp")
    pq = root / f"{digest}.parquet"
    snap = DatasetSnapshot(
        digest,
        df.height,
        sorted(df["symbol"].unique().to_list()),
        df["timestamp"].min().isoformat(),  # type: ignore[union-attr]  # polars types min()/max() as any literal; a Datetime column gives datetime
        df["timestamp"].max().isoformat(),  # type: ignore[union-attr]  # polars types min()/max() as any literal; a Datetime column gives datetime
        str(pq),
    )
    if not pq.exists():
        tmp = pq.with_name(f".{pq.name}.{os.getpid()}.tmp")
        df.write_parquet(tmp)
        os.replace(tmp, pq)
    meta = {**snap.to_dict(), **(extra or {})}
    _atomic_write_bytes(root / f"{digest}.json", json.dumps(meta, indent=2, default=str).encode())
    return snap
