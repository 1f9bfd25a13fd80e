"""The project's store of live bars: append-only Parquet, durable before the broker is acked.

Layout under `<state>/bars/`:
- `incoming/part-*.parquet`: one file per ingested batch, written to a temp name, fsynced,
  renamed and the folder fsynced, so a bar is on disk before its message is acknowledged;
- `symbol=<S>/date=<YYYY-MM-DD>/bars.parquet`: compacted partitions, one per symbol and UTC date.
  Compaction merges incoming parts into them (dedupe by (symbol, timestamp), sort, atomic
  replace) and only then deletes the part, so a kill at any point leaves every bar readable.

Reads union both and dedupe by (symbol, timestamp), so the bars and their content hash
(`data.snapshot.content_hash`) do not depend on arrival order or on whether compaction ran.
"""

from __future__ import annotations

import fcntl
import itertools
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import polars as pl

from tradeloop.data.bar_rules import Bar
from tradeloop.data.simulator import BAR_SCHEMA

_seq = itertools.count()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _durable_write(df: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.write_parquet(tmp, statistics=True)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def bars_frame(bars: Iterable[Bar]) -> pl.DataFrame:
    rows = list(bars)
    return pl.DataFrame(
        {
            "timestamp": [b.timestamp for b in rows],
            "symbol": [b.symbol for b in rows],
            "open": [b.open for b in rows],
            "high": [b.high for b in rows],
            "low": [b.low for b in rows],
            "close": [b.close for b in rows],
            "volume": [b.volume for b in rows],
        },
        schema=BAR_SCHEMA,
    )


def frame_bars(df: pl.DataFrame) -> Iterator[Bar]:
    for r in df.iter_rows():
        yield Bar(r[1], r[0], r[2], r[3], r[4], r[5], r[6])


class BarStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / "incoming"

    def _ensure(self) -> None:
        self.incoming.mkdir(parents=True, exist_ok=True)

    def append(self, bars: list[Bar]) -> Path | None:
        """Persist `bars` durably as one incoming part; returns its path (None for no bars)."""
        if not bars:
            return None
        self._ensure()
        path = (
            self.incoming
            / f"part-{datetime.now().strftime('%Y%m%dT%H%M%S%f')}-{os.getpid()}-{next(_seq):06d}.parquet"
        )
        _durable_write(bars_frame(bars), path)
        return path

    def _files(self) -> list[Path]:
        if not self.root.exists():
            return []
        parts = sorted(self.incoming.glob("part-*.parquet")) if self.incoming.exists() else []
        return sorted(self.root.glob("symbol=*/date=*/bars.parquet")) + parts

    def stamp(self) -> tuple[int, int]:
        """Changes whenever bars are added or compacted: (files, newest mtime in ns)."""
        files = self._files()
        return len(files), max((f.stat().st_mtime_ns for f in files), default=0)

    def read(self, symbol: str | None = None) -> pl.DataFrame:
        """Every persisted bar (of `symbol`), deduped by (symbol, timestamp), sorted. A part
        that a compaction merged and removed while we listed means: list again."""
        for _ in range(5):
            try:
                return self._read(symbol)
            except FileNotFoundError:
                continue
        return self._read(symbol)

    def _read(self, symbol: str | None) -> pl.DataFrame:
        files = self._files()
        if symbol is not None:
            files = [
                f
                for f in files
                if "incoming" in f.parts or f.parent.parent.name == f"symbol={symbol}"
            ]
        if not files:
            return pl.DataFrame(schema=BAR_SCHEMA)
        df = pl.concat([pl.read_parquet(f) for f in files], how="vertical")
        if symbol is not None:
            df = df.filter(pl.col("symbol") == symbol)
        return df.unique(["symbol", "timestamp"], keep="first", maintain_order=True).sort(
            "symbol", "timestamp"
        )

    def lookup(self, symbol: str, ts: datetime) -> Bar | None:
        """The persisted bar at (symbol, ts), reading only its partition and the incoming parts.
        A compaction running meanwhile may move the bar from a part into its partition; the
        partition is read first, so a part gone under us means: look again."""
        for _ in range(5):
            try:
                return self._lookup(symbol, ts)
            except FileNotFoundError:
                continue
        return self._lookup(symbol, ts)

    def _lookup(self, symbol: str, ts: datetime) -> Bar | None:
        files = [self.root / f"symbol={symbol}" / f"date={ts.date().isoformat()}" / "bars.parquet"]
        if self.incoming.exists():
            files += sorted(self.incoming.glob("part-*.parquet"))
        for f in files:
            if not f.exists():
                continue
            hit = pl.read_parquet(f).filter(
                (pl.col("symbol") == symbol) & (pl.col("timestamp") == ts)
            )
            if hit.height:
                return next(frame_bars(hit.head(1)))
        return None

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self._ensure()
        with open(self.root / ".compact.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def compact(self, max_parts: int = 10_000) -> int:
        """Merge incoming parts into their partitions; returns how many parts were merged."""
        if not self.incoming.exists():
            return 0
        with self._lock():
            parts = sorted(self.incoming.glob("part-*.parquet"))[:max_parts]
            if not parts:
                return 0
            new = pl.concat([pl.read_parquet(p) for p in parts], how="vertical")
            new = new.with_columns(pl.col("timestamp").dt.date().alias("_date"))
            for (symbol, day), group in new.group_by(["symbol", "_date"]):
                target = self.root / f"symbol={symbol}" / f"date={day.isoformat()}" / "bars.parquet"
                target.parent.mkdir(parents=True, exist_ok=True)
                merged = group.drop("_date")
                if target.exists():
                    merged = pl.concat([pl.read_parquet(target), merged], how="vertical")
                merged = merged.unique(["symbol", "timestamp"], keep="first").sort("timestamp")
                _durable_write(merged, target)
            for p in parts:
                p.unlink()
            _fsync_dir(self.incoming)
            return len(parts)
