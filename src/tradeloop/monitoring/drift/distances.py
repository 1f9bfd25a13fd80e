"""KS and Wasserstein between sorted samples, or between a sketch and a sample, in numpy.

Exact paths match scipy (`ks_2samp`, `wasserstein_distance`) to float rounding. Wasserstein is
integrated over the two quantile functions without merging the samples; KS is read off one
merge (a stable argsort of two sorted runs is a linear timsort merge). Sketch paths treat the
reference CDF as piecewise linear between the sketch's knots (`samples.Sketch`).

Why not call scipy for the exact paths: `bench/drift.py`'s scipy row, 1M vs 1M rows, the 16
numeric columns one at a time, sorting included, on the shared 2-core machine: KS 4.5 s here
against 9.1 s for `ks_2samp` (2.0x), Wasserstein 3.2 s against 64.0 s for
`wasserstein_distance` (20x), with the same values to 2e-13 relative. Both merges stay. At
<= 10,000 values `ks_pvalue` does call `ks_2samp`, for its exact p-value.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from tradeloop.monitoring.drift.samples import Sample, Sketch, dot

KS_EXACT_MAX_N = 10_000  # scipy's ks_2samp(method="auto") is exact up to this many values


def _merged_gaps(a: Sample, b: Sample) -> tuple[np.ndarray, np.ndarray, int]:
    """Both samples merged in order: (values, e, n * m) with e = n * m * (F_a - F_b) after
    each merged value, in exact integer arithmetic (floats hold integers exactly below 2**53).

    At the last of a run of equal values e matches scipy's searchsorted(side='right'); inside
    such a run the next gap is zero, so neither KS nor Wasserstein reads it there. Buffers are
    reused in place: at 1M + 1M values every fresh array costs as much as the arithmetic.
    """
    n, m = a.n, b.n
    x = np.concatenate((a.values, b.values))
    order = np.argsort(x, kind="stable")  # two sorted runs: timsort merges them in O(n)
    xs = np.take(x, order)
    from_a = order < len(a.values)
    if a.counts is None and b.counts is None:
        e = order.view(np.float64)  # order is spent: reuse its memory for the increments
        np.multiply(from_a, float(n + m), out=e)
        e -= n  # +m for a value of a, -n for a value of b
    else:
        wa = np.ones(len(a.values), np.int64) if a.counts is None else a.counts
        wb = np.ones(len(b.values), np.int64) if b.counts is None else b.counts
        w = np.concatenate((wa, wb))[order].astype(np.float64)
        e = np.where(from_a, w * m, w * -n)
    np.cumsum(e, out=e)
    return xs, e, n * m


def ks_statistic(reference: Sample, current: Sample) -> float:
    """Two-sample KS statistic D = sup |F_ref - F_cur|."""
    xs, e, scale = _merged_gaps(reference, current)
    last = np.empty(len(xs), dtype=bool)
    np.not_equal(xs[1:], xs[:-1], out=last[:-1])
    last[-1] = True
    np.abs(e, out=e)
    return float(np.max(e, where=last, initial=0.0)) / scale


def ks_pvalue(reference: Sample, current: Sample) -> float:
    """scipy's ks_2samp p-value; exact path delegated to scipy (cheap at <= 10,000 values)."""
    n, m = reference.n, current.n
    if max(n, m) <= KS_EXACT_MAX_N:
        with warnings.catch_warnings():  # scipy's exact-to-asymptotic fallback warns
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(stats.ks_2samp(reference.expand(), current.expand()).pvalue)
    return ks_pvalue_asymptotic(ks_statistic(reference, current), n, m)


def ks_pvalue_asymptotic(d: float, n: int, m: int) -> float:
    """scipy's large-sample KS p-value for statistic d and sample sizes n, m."""
    big, small = max(n, m), min(n, m)
    en = float(big) * small / (big + small)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def wasserstein(reference: Sample, current: Sample) -> float:
    """Wasserstein-1 distance between two exact samples (scipy's wasserstein_distance)."""
    n, m = reference.n, current.n
    if reference.counts is None and current.counts is None and n * m < 2**53:
        return _wasserstein_quantiles(reference.values, current.values)
    xs, e, scale = _merged_gaps(reference, current)
    gaps = np.subtract(xs[1:], xs[:-1])
    np.abs(e, out=e)
    return float(dot(e[:-1], gaps)) / scale


def _wasserstein_quantiles(a: np.ndarray, b: np.ndarray) -> float:
    """W1 = integral over t in [0, 1] of |Q_a(t) - Q_b(t)|, for raw sorted samples.

    With n >= m, each of a's quantile steps (width 1/n) overlaps at most two of b's (width
    1/m), so the integral is a sum over a's values alone: no merge, no argsort. Positions are
    integers in units of 1/(n*m), held exactly in float64. About 3x faster than the merge.
    """
    n, m = len(a), len(b)
    if m > n:
        a, b, n, m = b, a, m, n
    x = np.arange(n, dtype=np.float64)
    x *= m  # a's step i spans [i*m, i*m + m)
    w = np.divide(x, n)
    np.floor(w, out=w)  # b's step j holding that start
    j = w.astype(np.int64)
    w += 1
    w *= n  # where b's step j ends
    x += m
    np.minimum(w, x, out=w)
    w -= x
    w += m  # overlap of a's step i with b's step j; the rest (m - w) is with step j + 1
    np.take(b, j, out=x, mode="clip")
    x -= a
    np.abs(x, out=x)
    total = float(dot(x, w))
    j += 1
    np.take(b, j, out=x, mode="clip")  # j + 1 == m only where the overlap is all in step j
    x -= a
    np.abs(x, out=x)
    np.subtract(m, w, out=w)
    total += float(dot(x, w))
    return total / (float(n) * m)


def normed_wasserstein(distance: float, reference_std: float) -> float:
    """Evidently's normalisation: divide by the reference std, floored at 0.001."""
    return distance / max(reference_std, 0.001)


def ks_statistic_sketch(reference: Sketch, current: Sample) -> float:
    """sup |G - F_cur| for the sketch's piecewise-linear CDF G, at every break of either."""
    u, below = current.distinct()
    m = current.n
    g_right, g_left = reference.cdf_both(u)
    d = np.abs(g_right - below / m).max(initial=0.0)
    d = max(d, np.abs(g_left - (below - _run_lengths(current, below)) / m).max(initial=0.0))
    q = reference.quantiles
    q_right, q_left = reference.cdf_both(q)
    d = max(d, np.abs(q_right - current.count_below(q, "right") / m).max(initial=0.0))
    d = max(d, np.abs(q_left - current.count_below(q, "left") / m).max(initial=0.0))
    return float(d)


def _run_lengths(sample: Sample, below: np.ndarray) -> np.ndarray:
    if sample.counts is not None:
        return sample.counts
    return np.diff(below, prepend=0)


def _abs_linear_integral(d0: np.ndarray, d1: np.ndarray) -> np.ndarray:
    """Mean of |f| over pieces where f goes linearly from d0 to d1 (overwrites d0 and d1).

    Without a zero crossing that is (|d0| + |d1|) / 2; with one, (d0^2 + d1^2) / (2 (|d0| + |d1|))
    = (|d0| + |d1|) / 2 - |d0 d1| / (|d0| + |d1|).
    """
    s: np.ndarray = np.abs(d0)
    np.multiply(d0, d1, out=d0)  # negative where f crosses zero
    np.abs(d1, out=d1)
    s += d1
    np.minimum(d0, 0.0, out=d0)
    np.divide(d0, s, out=d0, where=d0 < 0)
    s *= 0.5
    s += d0
    return s


def wasserstein_sketch(reference: Sketch, current: Sample) -> float:
    """W1 = integral over t in [0, 1] of |Q_G(t) - Q_cur(t)|, in the quantile domain.

    Q_cur is a step function (value b_i on (i/m, (i+1)/m]) and Q_G is linear between knots, so a
    step with no knot inside contributes the integral of |linear - constant|, in closed form.
    The few steps with knots inside (at most one per knot) are then redone piece by piece.
    """
    b = current.expand()
    m = len(b)
    levels, q = reference.levels, reference.quantiles
    g = np.interp(np.arange(m + 1) / m, levels, q)
    per_step = _abs_linear_integral(g[:-1] - b, g[1:] - b)
    total = float(per_step.sum()) / m
    # knots strictly inside a step: step i spans (i/m, (i+1)/m)
    pos = levels * m
    step = np.floor(pos).astype(np.int64)
    inside = (pos != step) & (step >= 0) & (step < m)
    if not inside.any():
        return total
    steps = np.unique(step[inside])
    total -= float(per_step[steps].sum()) / m
    # pieces of the split steps: their ends plus the knots inside, ordered by (step, t)
    ids = np.concatenate((steps, steps, step[inside]))
    ts = np.concatenate((steps / m, (steps + 1) / m, levels[inside]))
    order = np.lexsort((ts, ids))
    ids, ts = ids[order], ts[order]
    same = ids[1:] == ids[:-1]
    gp = np.interp(ts, levels, q)
    c = b[ids[:-1]][same]
    pieces = _abs_linear_integral(gp[:-1][same] - c, gp[1:][same] - c)
    return total + float(dot(pieces, np.diff(ts)[same]))
