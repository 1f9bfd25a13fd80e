"""Cross-sectional percentile ranks, the one implementation (bench/features.py measures it):
`cs_ranks` for the batch path, `percentile_ranks` for one cross-section (`online` snapshots),
and `CrossSection` for ranking a few symbols of a live cross-section of many.

Ranking inside `.over("timestamp")` pays a fixed cost per group, and there is a group per
timestamp. Laid out as a timestamps x symbols grid, the same ranks are one row-wise numpy sort:
when every symbol trades the same timestamps (the common case) the grid is a reshape of the
sorted column; otherwise rows are scattered into it. Calendars so sparse that the grid would be
much larger than the data fall back to `.over`.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

_MAX_FILL = 4  # grid cells per row of data beyond which the per-timestamp fallback is used


@dataclass(frozen=True)
class _Grid:
    """Where each row of the (symbol, timestamp)-sorted frame sits in the grid."""

    n_times: int
    n_symbols: int
    time: np.ndarray | None  # None: aligned, row i is (i % n_times, i // n_times)
    symbol: np.ndarray | None


def cs_ranks(frame: pl.DataFrame, columns: Sequence[str]) -> list[pl.Series]:
    """For each column, (average rank - 1) / (n - 1) among the rows sharing its timestamp.

    `frame` is sorted by (symbol, timestamp). Nulls are not ranked nor counted; a lone value
    ranks 0.5. The series keep the column names.
    """
    grid = _grid(frame) if columns else None
    out = []
    for of in columns:
        if grid is None:
            out.append(_rank_over(frame, of))
            continue
        values = frame[of].cast(pl.Float64).fill_null(np.nan).to_numpy()
        if grid.time is None:
            table = values.reshape(grid.n_symbols, grid.n_times).T
            ranked = _row_percentile_ranks(table).T.reshape(-1)
        else:
            table = np.full((grid.n_times, grid.n_symbols), np.nan)
            table[grid.time, grid.symbol] = values
            ranked = _row_percentile_ranks(table)[grid.time, grid.symbol]
        out.append(pl.Series(of, ranked, dtype=pl.Float64, nan_to_null=True))
    return out


def percentile_ranks(values: Sequence[float | None]) -> list[float | None]:
    """One cross-section: `cs_ranks`' arithmetic on a one-row grid; None (or NaN) is not ranked."""
    if not values:
        return []
    row = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    return [None if math.isnan(r) else float(r) for r in _row_percentile_ranks(row[None, :])[0]]


class CrossSection:
    """One timestamp's values of each ranked feature, sorted: a symbol's rank is two binary
    searches, so a batch of a few live bars ranks its own symbols (and a reader ranks one
    later) without rebuilding every row of a 1,000-symbol cross-section (bench/ingest.py:
    the full rebuild took 2–10 ms a batch). The arithmetic is `_row_percentile_ranks`'s:
    (average 0-based position) / (n - 1), 0.5 if n == 1, None not ranked."""

    __slots__ = ("_sorted",)

    def __init__(self, columns: dict[int, Iterable[float | None]]) -> None:
        self._sorted = {
            idx: sorted(v for v in values if v is not None and v == v)
            for idx, values in columns.items()
        }

    def rank(self, idx: int, value: float | None) -> float | None:
        """The rank of `value`, one of the values the cross-section was built from."""
        if value is None or value != value:
            return None
        ordered = self._sorted[idx]
        n = len(ordered)
        if n <= 1:
            return 0.5
        lo = bisect_left(ordered, value)
        hi = bisect_right(ordered, value)
        position = float(lo) if hi - lo <= 1 else (lo + hi - 1) / 2.0
        return position / (n - 1)


def _grid(frame: pl.DataFrame) -> _Grid | None:
    """The grid layout of the frame's rows, or None when the fallback should rank."""
    n = frame.height
    if n == 0:
        return None
    sym = frame["symbol"]
    starts = np.flatnonzero((sym != sym.shift(1)).fill_null(True).to_numpy())
    n_symbols = starts.size
    times = frame["timestamp"].to_physical().to_numpy()
    if n % n_symbols == 0 and (np.diff(starts) == n // n_symbols).all():
        blocks = times.reshape(n_symbols, n // n_symbols)
        if (blocks == blocks[0]).all():
            return _Grid(n // n_symbols, n_symbols, None, None)
    codes = frame["timestamp"].rank("dense").cast(pl.Int64).to_numpy() - 1
    n_times = int(codes.max()) + 1
    if n_times * n_symbols > _MAX_FILL * n + 1024:
        return None
    lengths = np.diff(np.append(starts, n))
    return _Grid(n_times, n_symbols, codes, np.repeat(np.arange(n_symbols), lengths))


def _rank_over(frame: pl.DataFrame, of: str) -> pl.Series:
    x = pl.col(of)
    n = x.count().over("timestamp")
    rank = x.rank("average").over("timestamp")
    expr = pl.when(x.is_null()).then(None).when(n == 1).then(0.5).otherwise((rank - 1) / (n - 1))
    return frame.select(expr.cast(pl.Float64).alias(of)).to_series()


def _row_percentile_ranks(grid: np.ndarray) -> np.ndarray:
    """(average rank - 1) / (n - 1) within each row, NaN ignored (and kept); 0.5 if n == 1."""
    grid = np.ascontiguousarray(grid)
    rows, cols = grid.shape
    order = np.argsort(grid, axis=1)  # NaN sorts last
    ordered = np.take_along_axis(grid, order, axis=1)
    rank = np.broadcast_to(np.arange(cols, dtype=float), (rows, cols))  # 0-based, no ties
    tied = ordered[:, 1:] == ordered[:, :-1]
    if tied.any():  # rare with real prices: average the positions of each run of equal values
        with_ties = np.flatnonzero(tied.any(axis=1))
        starts = np.ones((with_ties.size, cols), dtype=bool)
        starts[:, 1:] = ~tied[with_ties]
        ends = np.ones_like(starts)
        ends[:, :-1] = starts[:, 1:]
        pos = rank[: with_ties.size]
        first = np.maximum.accumulate(np.where(starts, pos, 0), axis=1)
        last = np.minimum.accumulate(np.where(ends, pos, cols - 1)[:, ::-1], axis=1)[:, ::-1]
        rank = rank.copy()
        rank[with_ties] = (first + last) / 2.0
    n = cols - np.isnan(ordered).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ranked = np.where(n > 1, rank / (n - 1), 0.5)
    ranked[np.isnan(ordered)] = np.nan
    out = np.empty_like(ranked)
    np.put_along_axis(out, order, ranked, axis=1)
    return out
