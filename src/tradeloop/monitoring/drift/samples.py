"""Sorted samples, quantile sketches and histogram binning: the inputs every statistic reads.

A `Sample` is an exact sorted sample (raw, or distinct values with counts); a `Sketch` is a
bounded-size quantile summary of a large reference (see `profiles` for its error bounds).
Histogram counts follow `np.histogram` exactly but are `searchsorted` on sorted data, so binning
a sorted million-row column costs microseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """The dot product without BLAS: on a million floats OpenBLAS starts its threads, which
    then spin on the other core and slow down the column running there."""
    return float(np.einsum("i,i->", a, b))


@dataclass(frozen=True, slots=True, eq=False)
class Sample:
    """An exact sorted numeric sample: raw values, or distinct values with their counts.

    The compressed form (`counts` given) is how a profile stores a column with few distinct
    values: every statistic computed from it is exact.
    """

    values: np.ndarray  # sorted, finite float64
    counts: np.ndarray | None = None  # int64 multiplicity of each (distinct) value
    n: int = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.values) if self.counts is None else int(self.counts.sum())
        object.__setattr__(self, "n", n)

    @classmethod
    def from_unsorted(cls, x: np.ndarray) -> Sample:
        """Drop NaN and infinities (as Evidently does) and sort."""
        x = np.asarray(x, dtype=np.float64)
        finite = np.isfinite(x)
        if not finite.all():
            x = x[finite]
        return cls(sort_floats(x))

    def distinct(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct values and, for each, the number of sample values <= it."""
        if self.counts is not None:
            return self.values, np.cumsum(self.counts)
        v = self.values
        if len(v) == 0:
            return v, np.zeros(0, dtype=np.int64)
        new = np.empty(len(v), dtype=bool)
        new[0] = True
        np.not_equal(v[1:], v[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        ends = np.empty(len(starts), dtype=np.int64)
        ends[:-1] = starts[1:]
        ends[-1] = len(v)
        return v[starts], ends

    def nunique(self) -> int:
        if self.counts is not None or len(self.values) == 0:
            return len(self.values)
        return int(np.count_nonzero(self.values[1:] != self.values[:-1])) + 1

    def count_below(self, x: np.ndarray, side: Literal["left", "right"]) -> np.ndarray:
        """How many sample values are < x (side='left') or <= x (side='right')."""
        idx = np.searchsorted(self.values, x, side=side)
        if self.counts is None:
            return idx
        return np.concatenate(([0], np.cumsum(self.counts)))[idx]

    def expand(self) -> np.ndarray:
        return self.values if self.counts is None else np.repeat(self.values, self.counts)

    def std(self) -> float:
        """Population std (ddof=0), as Evidently's `np.std(reference)`."""
        if self.counts is None:
            return float(np.std(self.values))
        w = self.counts / self.n
        mean = float(dot(w, self.values))
        return math.sqrt(float(dot(w, (self.values - mean) ** 2)))


SKETCH_RELATIVE_STEP = 0.02  # in the tails, each knot is at most 2% further (in rank) from its end


def sketch_ranks(n: int, size: int) -> np.ndarray:
    """Ranks (0-based, of n sorted values) a sketch keeps: about `size` evenly spaced ones, plus
    a geometric grid into each tail (every rank near the ends, then steps of 2% of the distance
    to the end). Tails carry most of the Wasserstein error of an even grid, so this keeps the
    extremes exactly at a cost of about 100 * ln(n / size) extra knots per tail.
    """
    if n <= 1:
        return np.zeros(min(n, 1), dtype=np.int64)
    h = max((n - 1) / size, 1.0)
    ranks = [0]
    r = 0
    while r < n - 1:
        d = min(r, n - 1 - r)
        step = max(1, int(min(h, SKETCH_RELATIVE_STEP * d)))
        if step == int(h) and r + step < n - 1:  # even part: jump straight to the far tail
            end = n - 1 - int(h / SKETCH_RELATIVE_STEP)
            if end > r + step:
                even = np.round(np.linspace(r, end, max(2, round((end - r) / h) + 1))).astype(int)
                ranks.extend(even[1:].tolist())
                r = int(even[-1])
                continue
        r = min(r + step, n - 1)
        ranks.append(r)
    return np.unique(np.asarray(ranks, dtype=np.int64))


@dataclass(frozen=True, slots=True, eq=False)
class Sketch:
    """A bounded-size stand-in for a large reference: order statistics at chosen ranks.

    The reference CDF is modelled as piecewise linear through (x_(r_j), r_j / (n - 1)): exact at
    every knot, so the CDF error is below the largest rank gap / n anywhere and, for smooth
    data, far smaller. Repeated knot values model point masses (a jump). `ReferenceProfile`
    measures the model's actual KS and Wasserstein distance to the raw reference when it is
    built, which bounds the error of every KS statistic and Wasserstein distance computed from
    it (triangle inequality).
    """

    quantiles: np.ndarray  # sorted knot values: x_(r_j), first = min, last = max
    ranks: np.ndarray  # increasing int ranks r_j, first 0, last n - 1
    n: int  # size of the sample the sketch summarises
    levels: np.ndarray = field(init=False)  # r_j / (n - 1): the model CDF at each knot

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", self.ranks / max(self.n - 1, 1))

    @classmethod
    def of(cls, sample: Sample, size: int) -> Sketch:
        x = sample.expand()
        ranks = sketch_ranks(len(x), size)
        return cls(x[ranks], ranks, len(x))

    def cdf(self, x: np.ndarray, side: Literal["left", "right"] = "right") -> np.ndarray:
        """Model CDF at x: G(x) for side='right', the left limit G(x-) for side='left'."""
        q, t = self.quantiles, self.levels
        k = len(q) - 1
        idx = np.searchsorted(q, x, side=side)
        inner = (idx > 0) & (idx <= k)
        lo = np.clip(idx - 1, 0, k)
        hi = np.clip(idx, 0, k)
        span = q[hi] - q[lo]
        frac = np.divide(x - q[lo], span, out=np.zeros(len(idx)), where=inner & (span > 0))
        return np.where(inner, t[lo] + frac * (t[hi] - t[lo]), (idx > k).astype(np.float64))

    def cdf_both(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(G(x), G(x-)) fast: G is continuous except at repeated knots (point masses), so
        np.interp serves everywhere else and only values equal to a repeated knot are redone.
        """
        q = self.quantiles
        right = np.interp(x, q, self.levels)
        left = right
        repeated = q[1:][q[1:] == q[:-1]]
        if len(repeated):
            hit = np.flatnonzero(np.isin(x, repeated))
            if len(hit):
                left = right.copy()
                right[hit] = self.cdf(x[hit], "right")
                left[hit] = self.cdf(x[hit], "left")
        return right, left


# ------------------------------------------------------------------------------------ binning


def sturges_edges(lo: float, hi: float, n_total: int) -> np.ndarray:
    """`np.histogram_bin_edges(combined, bins="sturges")` from min, max and size alone."""
    first, last = float(lo), float(hi)
    if first == last:
        first, last = first - 0.5, last + 0.5
    width = (float(hi) - float(lo)) / (np.log2(n_total) + 1.0)
    n_bins = int(np.ceil((last - first) / width)) if width else 1
    return np.linspace(first, last, n_bins + 1, endpoint=True)


def histogram_counts(sample: Sample, edges: np.ndarray) -> np.ndarray:
    """np.histogram(sample, edges) counts: [e_i, e_i+1), the last bin closed on the right."""
    below = sample.count_below(edges, "left")
    counts = np.diff(below)
    counts[-1] += sample.count_below(edges[-1:], "right")[0] - below[-1]
    return counts


def histogram_shares_sketch(reference: Sketch, edges: np.ndarray) -> np.ndarray:
    """The sketch's model share of each bin (same bin convention as `histogram_counts`)."""
    left = reference.cdf(edges, "left")
    left[-1] = reference.cdf(edges[-1:], "right")[0]
    return np.diff(left)


def aligned_counts(
    keys_a: np.ndarray, counts_a: np.ndarray, keys_b: np.ndarray, counts_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Counts of two sorted distinct-value lists over the union of their values."""
    keys = np.union1d(keys_a, keys_b)
    out_a = np.zeros(len(keys), np.int64)
    out_b = np.zeros(len(keys), np.int64)
    out_a[np.searchsorted(keys, keys_a)] = counts_a
    out_b[np.searchsorted(keys, keys_b)] = counts_b
    return out_a, out_b


def sort_floats(x: np.ndarray) -> np.ndarray:
    """Finite float64 values, ascending. Polars' sort takes about half the time of
    `np.sort` on a million floats, and sorting is nearly all of an exact drift report."""
    if x.size < 4096:  # below this the conversion costs more than the sort
        return np.sort(x)
    # single-threaded: columns are already sorted in parallel, one per core (columns.parallel_map)
    return pl.Series(x).sort(multithreaded=False).to_numpy()  # read-only, zero-copy
