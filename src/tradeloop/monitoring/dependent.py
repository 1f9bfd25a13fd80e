"""Sequential analysis for dependent observations: per-bar aggregates, HAC variance.

A canary's PnL is not a sample of independent draws: one symbol's PnL over consecutive bars is
autocorrelated, and symbols on the same bar share the market. Fed as if independent, the
confidence sequence (`monitoring.sequential`) is too narrow and promotes a challenger that is
no better far more often than alpha. Two steps restore it:

1. `per_bar`: average each arm's PnL over its units at each bar, one observation per bar, so
   the cross-section (symbols moving together) is inside each observation;
2. `hac_stats`: the per-bar series' long-run variance by Newey and West (1987), Bartlett
   weights up to lag floor(sqrt(n)) (`default_lags`), encoded as `ArmStats` with the same n and mean
   whose sample variance *is* the long-run variance, so `analyze` and `difference_interval`
   use it unchanged.

tests/monitoring/test_dependent.py simulates AR(1) PnL under "no difference" and measures the
false-decision rate at every peek: about alpha with these steps, several times alpha without.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from tradeloop.errors import BadInput
from tradeloop.monitoring.sequential import ArmStats


def default_lags(n: int) -> int:
    """Bartlett window floor(sqrt(n)): wider than Newey-West's 4(n/100)^(2/9), which at a
    canary's few hundred bars understates strong autocorrelation (the simulation measured
    8.8% false decisions at alpha 5% with it, against 3.7% with sqrt(n))."""
    return math.isqrt(n) if n > 1 else 0


def long_run_variance(values: npt.ArrayLike, lags: int | None = None) -> npt.NDArray[np.float64]:
    """Newey-West long-run variance of each row (last axis is time); never below zero."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] < 2:
        raise BadInput("a long-run variance needs at least two observations")
    n = x.shape[-1]
    lags = default_lags(n) if lags is None else lags
    if not 0 <= lags < n:
        raise BadInput(f"lags must be in [0, {n - 1}], got {lags}")
    d = x - x.mean(axis=-1, keepdims=True)
    total = np.einsum("...t,...t->...", d, d) / n
    for k in range(1, lags + 1):
        gamma = np.einsum("...t,...t->...", d[..., k:], d[..., :-k]) / n
        total = total + 2.0 * (1.0 - k / (lags + 1)) * gamma
    return np.asarray(np.maximum(total * n / (n - 1), 0.0), dtype=np.float64)


def hac_stats(values: npt.ArrayLike, lags: int | None = None) -> ArmStats:
    """ArmStats of a time-ordered series whose variance is its long-run (HAC) variance."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(x).all():
        raise BadInput("metric values must be finite (found NaN or inf)")
    n = int(x.size)
    if n < 2:
        return ArmStats.from_values(x)
    lrv = float(long_run_variance(x, lags))
    s = float(x.sum())
    return ArmStats(n=n, sum=s, sum_sq=lrv * (n - 1) + s * s / n)


def per_bar(timestamps: Sequence[object], values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Mean value per distinct timestamp, in time order: one observation per bar."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if len(timestamps) != x.size:
        raise BadInput(f"{len(timestamps)} timestamps for {x.size} values")
    keys, inverse = np.unique(np.asarray(timestamps), return_inverse=True)
    sums = np.bincount(inverse, weights=x, minlength=keys.size)
    counts = np.bincount(inverse, minlength=keys.size)
    return np.asarray(sums / counts, dtype=np.float64)
