"""Drift statistics of counts over shared categories (or bins), with Evidently's definitions.

- `psi`: sum((r - c) * ln(r / c)) over binned shares; a zero share is replaced by 0.0001, or by
  the smallest non-zero share / 1e6 when that is <= 0.0001, separately for each sample.
- `jensenshannon`: scipy's Jensen-Shannon distance (natural log) of the shares, zeros kept.
- `chisquare_pvalue`: scipy's chi-square test of homogeneity of the 2 x k table
  [reference; current]. This one deliberately differs from Evidently, whose goodness-of-fit
  version treats the reference as exact: with samples of similar size that ignores half the
  noise, and at p < 0.05 it raises a false alarm about 23% of the time (500 vs 400 rows, no
  drift; `bench/drift_calibration.py`). For a reference much larger than the current window
  the two agree.
- `z_pvalue`: Evidently's two-proportion z-test for binary columns.

Fewer than two categories carry no evidence: p-values are 1 and distances 0 there.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats
from scipy.spatial import distance

PSI_ZERO = 1e-4  # Evidently's replacement for an empty bin's share


def _fill_zeroes(shares: np.ndarray) -> np.ndarray:
    nonzero = shares[shares != 0]
    smallest = float(nonzero.min()) if len(nonzero) else PSI_ZERO
    fill = smallest / 10**6 if smallest <= PSI_ZERO else PSI_ZERO
    return np.where(shares == 0, fill, shares)


def psi(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    """Population stability index of two binned distributions (shares of each sample)."""
    r = _fill_zeroes(np.asarray(reference_shares, dtype=np.float64))
    c = _fill_zeroes(np.asarray(current_shares, dtype=np.float64))
    return float(np.sum((r - c) * np.log(r / c)))


def jensenshannon(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    """scipy.spatial.distance.jensenshannon(p, q) with the natural log.

    Two nearly equal distributions can round the divergence below zero, where scipy's square
    root gives NaN: that is a distance of 0.
    """
    p = np.asarray(reference_shares, dtype=np.float64)
    q = np.asarray(current_shares, dtype=np.float64)
    if len(p) < 2:
        return 0.0
    with np.errstate(invalid="ignore"):
        d = float(distance.jensenshannon(p, q))
    return 0.0 if math.isnan(d) else d


def chisquare_pvalue(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """scipy.stats.chi2_contingency([reference; current], correction=False).pvalue."""
    table = np.vstack(
        (
            np.asarray(reference_counts, dtype=np.float64),
            np.asarray(current_counts, dtype=np.float64),
        )
    )
    table = table[:, table.sum(axis=0) > 0]  # a category neither sample has is no category
    if table.shape[1] < 2:
        return 1.0
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def z_pvalue(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Evidently's two-proportion z-test; the first (smallest) value is the 'zero' class.

    Counts are over the sorted union of values (at most two).
    """
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    if len(ref) < 2:
        return 1.0
    n1, n2 = ref.sum(), cur.sum()
    p1 = (n1 - ref[0]) / n1
    p2 = (n2 - cur[0]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2)
    if var <= 0:
        return 1.0
    z = (p1 - p2) / math.sqrt(var)
    return float(2 * (1 - special.ndtr(abs(z))))
