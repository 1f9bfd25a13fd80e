"""Reference profiles: what drift detection needs from the training data, computed once.

A `ReferenceProfile` is built at training time and stored as JSON next to the model, so the
monitor never needs the raw training data again. Per column it keeps:

- numeric: size, distinct-value count, population std, min, max, and either every distinct value
  with its count (exact; used when there are at most `sketch_size` distinct values) or a sketch:
  the order statistics at about `sketch_size` evenly spaced ranks plus a geometric grid into each
  tail (`samples.sketch_ranks`, ~2,700 knots for 1M rows at the default 2,048).
- categorical: every category with its count (exact).

Approximation (sketched numeric columns only). The sketch models the reference CDF as piecewise
linear through its knots. When the profile is built, the model's KS distance (`ks_error`) and
Wasserstein distance (`w_error`) to the raw reference are measured; by the triangle inequality
|D_profile - D_exact| <= ks_error and |W_profile - W_exact| <= w_error for any current data.
For 1M-row normal, lognormal, uniform and Student-t(2) columns at the default size, ks_error is
about 5e-5 (the KS critical value for 1M vs 1M rows at p = 0.05 is 1.9e-3) and w_error / std at
most 3e-4 (the normed-Wasserstein threshold is 0.1). PSI and Jensen-Shannon bin shares from a
sketch are each within 2 * ks_error of the exact shares. KS p-values from a sketch use scipy's
asymptotic formula. Every other statistic (std, categorical tests, columns with few values) is
exact. `sketch_size=None` keeps every distinct value: exact, but as large as the data.

Column types follow `columns` (Evidently's rules, decided on the reference). This module sits
above `distances` because a sketched profile measures its own error with them when it is built;
the methods read a profile through `per_value_counts` and `binned_shares`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tradeloop.errors import BadInput
from tradeloop.monitoring.drift.columns import (
    ColumnKind,
    as_columns,
    category_counts,
    detect_kind,
    numeric_values,
    parallel_map,
    skip_reason,
)
from tradeloop.monitoring.drift.distances import ks_statistic_sketch, wasserstein_sketch
from tradeloop.monitoring.drift.samples import (
    Sample,
    Sketch,
    aligned_counts,
    histogram_counts,
    histogram_shares_sketch,
    sturges_edges,
)

PROFILE_FORMAT = "tradeloop.drift_profile"
PROFILE_VERSION = 1
DEFAULT_SKETCH_SIZE = 2048
MIN_SKETCH_SIZE = 64  # above the 20 distinct values that switch PSI/JS to per-value bins


@dataclass(frozen=True, slots=True, eq=False)
class NumericProfile:
    """A numeric column of the reference: exact `sample`, or a `sketch` with error bounds."""

    n: int
    nunique: int
    std: float
    min: float
    max: float
    sample: Sample | None = None
    sketch: Sketch | None = None
    ks_error: float = 0.0  # sup |model CDF - reference CDF|; 0 when exact
    w_error: float = 0.0  # W1(model, reference) in data units; 0 when exact
    kind: ColumnKind = "numeric"

    @property
    def exact(self) -> bool:
        return self.sketch is None

    @classmethod
    def of(cls, sample: Sample, sketch_size: int | None, compress: bool) -> NumericProfile:
        """Profile of a sorted sample; `compress` stores distinct values with counts."""
        if sample.n == 0:
            raise ValueError("no finite values")
        nunique = sample.nunique()
        n, std, lo, hi = sample.n, sample.std(), float(sample.values[0]), float(sample.values[-1])
        if sketch_size is None or nunique <= sketch_size:
            if compress and sample.counts is None:
                values, below = sample.distinct()
                sample = Sample(values, np.diff(below, prepend=0))
            return cls(n, nunique, std, lo, hi, sample=sample)
        sketch = Sketch.of(sample, sketch_size)
        return cls(
            n,
            nunique,
            std,
            lo,
            hi,
            sketch=sketch,
            ks_error=ks_statistic_sketch(sketch, sample),
            w_error=wasserstein_sketch(sketch, sample),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "numeric",
            "n": self.n,
            "nunique": self.nunique,
            "std": self.std,
            "min": self.min,
            "max": self.max,
        }
        if self.sketch is not None:
            out["ranks"] = self.sketch.ranks.tolist()
            out["quantiles"] = self.sketch.quantiles.tolist()
            out["ks_error"] = self.ks_error
            out["w_error"] = self.w_error
        elif self.sample is not None:
            values, below = self.sample.distinct()
            out["values"] = values.tolist()
            out["counts"] = np.diff(below, prepend=0).tolist()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NumericProfile:
        n, nunique = int(d["n"]), int(d["nunique"])
        std, lo, hi = float(d["std"]), float(d["min"]), float(d["max"])
        if "quantiles" in d:
            q = np.asarray(d["quantiles"], dtype=np.float64)
            ranks = np.asarray(d["ranks"], dtype=np.int64)
            if len(q) != len(ranks) or len(q) < 2 or np.any(np.diff(q) < 0):
                raise ValueError("quantiles must be sorted and match ranks")
            return cls(
                n,
                nunique,
                std,
                lo,
                hi,
                sketch=Sketch(q, ranks, n),
                ks_error=float(d["ks_error"]),
                w_error=float(d["w_error"]),
            )
        values = np.asarray(d["values"], dtype=np.float64)
        counts = np.asarray(d["counts"], dtype=np.int64)
        if len(values) != len(counts) or np.any(np.diff(values) <= 0) or np.any(counts <= 0):
            raise ValueError("values must be distinct and sorted, counts positive")
        return cls(n, nunique, std, lo, hi, sample=Sample(values, counts))


@dataclass(frozen=True, slots=True, eq=False)
class CategoricalProfile:
    """A categorical column of the reference: every category's count (nulls dropped)."""

    counts: dict[Any, int]
    kind: ColumnKind = "categorical"
    exact: bool = True

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "categorical",
            "n": self.n,
            "categories": [[k, c] for k, c in self.counts.items()],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CategoricalProfile:
        counts = {k: int(c) for k, c in d["categories"]}
        return cls(counts)


ColumnProfile = NumericProfile | CategoricalProfile


def per_value_counts(ref: NumericProfile, cur: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Counts of each distinct value of either sample (exact references only)."""
    if ref.sample is None:  # a sketch has more than MIN_SKETCH_SIZE distinct values
        raise BadInput(
            "per-value tests need the exact reference values of a low-cardinality column"
        )
    rv, rb = ref.sample.distinct()
    cv, cb = cur.distinct()
    return aligned_counts(rv, np.diff(rb, prepend=0), cv, np.diff(cb, prepend=0))


def binned_shares(ref: NumericProfile, cur: Sample) -> tuple[np.ndarray, np.ndarray, bool]:
    """Shares of each sample in Evidently's Sturges bins over both: (reference, current, exact)."""
    lo = min(ref.min, float(cur.values[0]))
    hi = max(ref.max, float(cur.values[-1]))
    edges = sturges_edges(lo, hi, ref.n + cur.n)
    if ref.sample is not None:
        ref_shares = histogram_counts(ref.sample, edges) / ref.n
    else:
        assert ref.sketch is not None  # a NumericProfile holds one of the two
        ref_shares = histogram_shares_sketch(ref.sketch, edges)
    return ref_shares, histogram_counts(cur, edges) / cur.n, ref.sample is not None


def profile_column(
    s: pl.Series, kind: ColumnKind, sketch_size: int | None, compress: bool
) -> ColumnProfile:
    if kind == "categorical":
        counts = category_counts(s)
        if not counts:
            raise ValueError("no non-null values")
        return CategoricalProfile(counts)
    if not (s.dtype.is_numeric() or s.dtype == pl.Boolean):
        raise ValueError(f"type {s.dtype} is not numeric")
    return NumericProfile.of(Sample.from_unsorted(numeric_values(s)), sketch_size, compress)


# ------------------------------------------------------------------------------- the profile


@dataclass(frozen=True, slots=True, eq=False)
class ReferenceProfile:
    """Per-column summaries of a reference table, enough to compute every drift method."""

    columns: dict[str, ColumnProfile]
    skipped: dict[str, str]
    sketch_size: int | None = DEFAULT_SKETCH_SIZE

    @property
    def exact(self) -> bool:
        return all(c.exact for c in self.columns.values())

    @classmethod
    def from_table(
        cls,
        table: Any,
        columns: Sequence[str] | None = None,
        sketch_size: int | None = DEFAULT_SKETCH_SIZE,
    ) -> ReferenceProfile:
        """Profile a reference table (see the module docstring for what is kept)."""
        if sketch_size is not None and sketch_size < MIN_SKETCH_SIZE:
            raise BadInput(f"sketch_size must be at least {MIN_SKETCH_SIZE} (or None: exact)")
        series = as_columns(table)
        names = list(series) if columns is None else list(columns)
        missing = [c for c in names if c not in series]
        if missing:
            raise BadInput(f"columns not in the reference: {', '.join(missing)}")
        if not names:
            raise BadInput("the reference has no columns")

        def one(name: str) -> ColumnProfile | str:
            s = series[name]
            kind = detect_kind(s)
            if kind is None:
                return skip_reason(s)
            try:
                return profile_column(s, kind, sketch_size, compress=True)
            except ValueError as exc:
                return str(exc)

        results = parallel_map(one, names)
        return cls(
            columns={n: r for n, r in zip(names, results, strict=True) if not isinstance(r, str)},
            skipped={n: r for n, r in zip(names, results, strict=True) if isinstance(r, str)},
            sketch_size=sketch_size,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "sketch_size": self.sketch_size,
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
            "skipped": dict(self.skipped),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceProfile:
        if not isinstance(d, Mapping) or d.get("format") != PROFILE_FORMAT:
            raise BadInput(f"not a drift profile (expected format {PROFILE_FORMAT!r})")
        if d.get("version") != PROFILE_VERSION:
            raise BadInput(f"drift profile version {d.get('version')!r} is not supported")
        columns: dict[str, ColumnProfile] = {}
        for name, c in dict(d.get("columns", {})).items():
            try:
                if c["type"] == "numeric":
                    columns[name] = NumericProfile.from_dict(c)
                elif c["type"] == "categorical":
                    columns[name] = CategoricalProfile.from_dict(c)
                else:
                    raise ValueError(f"unknown type {c['type']!r}")
            except (KeyError, TypeError, ValueError) as exc:
                raise BadInput(f"drift profile column {name!r} is malformed: {exc}") from exc
            col = columns[name]
            if isinstance(col, NumericProfile) and not all(
                math.isfinite(v) for v in (col.std, col.min, col.max)
            ):
                raise BadInput(f"drift profile column {name!r} has non-finite statistics")
        size = d.get("sketch_size", DEFAULT_SKETCH_SIZE)
        return cls(columns, {str(k): str(v) for k, v in dict(d.get("skipped", {})).items()}, size)

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), allow_nan=False))
        return p

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        p = Path(path)
        if not p.is_file():
            raise BadInput(f"{p}: no such drift profile")
        try:
            return cls.from_dict(json.loads(p.read_text()))
        except json.JSONDecodeError as exc:
            raise BadInput(f"{p}: not valid JSON: {exc}") from exc
