"""Autocorrelated PnL: the false-decision rate of the sequential test, naive vs HAC per bar."""

from __future__ import annotations

import numpy as np
import pytest

from tradeloop.errors import BadInput
from tradeloop.monitoring.dependent import hac_stats, long_run_variance, per_bar
from tradeloop.monitoring.sequential import MomentArrays, difference_interval

ALPHA = 0.05


def _ar1(rng: np.random.Generator, shape: tuple[int, int], phi: float) -> np.ndarray:
    e = rng.standard_normal(shape)
    x = np.empty(shape)
    x[:, 0] = e[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, shape[1]):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


def _moments(x: np.ndarray, hac: bool) -> MomentArrays:
    n = x.shape[1]
    s = x.sum(axis=1)
    if not hac:
        return MomentArrays(np.full(len(x), n), s, np.einsum("et,et->e", x, x))
    return MomentArrays(np.full(len(x), n), s, long_run_variance(x) * (n - 1) + s * s / n)


def _false_decisions(hac: bool, phi: float, seed: int = 11) -> float:
    """Share of no-difference experiments whose interval ever excludes 0, peeking every 20
    bars from the 100th (the spec's default analysis.min_samples) to the 400th."""
    rng = np.random.default_rng(seed)
    experiments, bars = 1500, 400
    a, b = _ar1(rng, (experiments, bars), phi), _ar1(rng, (experiments, bars), phi)
    ever = np.zeros(experiments, dtype=bool)
    for t in range(100, bars + 1, 20):
        iv = difference_interval(_moments(a[:, :t], hac), _moments(b[:, :t], hac), ALPHA, 800)
        ever |= (iv.lower > 0) | (iv.upper < 0)
    return float(ever.mean())


def test_hac_per_bar_keeps_false_promotions_at_alpha_with_autocorrelated_pnl() -> None:
    naive = _false_decisions(hac=False, phi=0.6)
    robust = _false_decisions(hac=True, phi=0.6)
    assert naive > 3 * ALPHA  # independence assumed: the test cries wolf
    assert robust <= ALPHA + 0.02  # simulation error on 1500 experiments is about 0.006
    assert _false_decisions(hac=True, phi=0.0) <= ALPHA + 0.02  # no cost without dependence


def test_hac_stats_keep_the_mean_and_report_the_long_run_variance() -> None:
    rng = np.random.default_rng(3)
    x = _ar1(rng, (1, 5000), 0.5)[0]
    s = hac_stats(x)
    assert s.n == 5000 and s.mean == pytest.approx(x.mean())
    # AR(1) with unit innovations: long-run variance 1/(1-phi)^2 = 4, marginal 1/(1-phi^2)
    assert s.variance is not None and 2.8 < s.variance < 4.4
    assert np.var(x, ddof=1) == pytest.approx(4 / 3, rel=0.1)


def test_per_bar_averages_units_at_each_timestamp() -> None:
    out = per_bar([2, 1, 2, 1, 3], [1.0, 2.0, 3.0, 4.0, 5.0])
    assert out.tolist() == [3.0, 2.0, 5.0]
    with pytest.raises(BadInput, match="2 timestamps for 3 values"):
        per_bar([1, 2], [1.0, 2.0, 3.0])
    with pytest.raises(BadInput, match="at least two"):
        long_run_variance([1.0])
