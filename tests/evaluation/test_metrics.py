"""Metrics checked against independent computations (numpy, pandas, scipy)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy.stats import spearmanr

from tradeloop.evaluation.metrics import (
    aligned_length,
    max_drawdown,
    periods_per_year,
    position_metrics,
    return_metrics,
    sharpe,
    spearman_ic,
)


def test_periods_per_year() -> None:
    assert periods_per_year(timedelta(days=1)) == 365
    assert periods_per_year(timedelta(hours=1)) == 365 * 24
    assert periods_per_year(timedelta(minutes=15)) == 365 * 24 * 4
    assert periods_per_year(timedelta(days=1), "weekdays") == 252
    assert periods_per_year(timedelta(hours=1), "weekdays") == 252 * 24
    assert periods_per_year(timedelta(weeks=1), "weekdays") == pytest.approx(365 / 7)
    with pytest.raises(ValueError):
        periods_per_year(timedelta(0))


def test_return_metrics_match_pandas() -> None:
    r = np.random.default_rng(0).normal(0.0005, 0.01, 2000)
    s = pd.Series(r)
    m = return_metrics(r, 252.0)
    equity = (1 + s).cumprod()
    assert m["total_return"] == pytest.approx(equity.iloc[-1] - 1)
    assert m["annualized_return"] == pytest.approx(equity.iloc[-1] ** (252 / 2000) - 1)
    assert m["annualized_volatility"] == pytest.approx(s.std() * np.sqrt(252))
    assert m["sharpe"] == pytest.approx(s.mean() / s.std() * np.sqrt(252))
    downside = np.sqrt((s.clip(upper=0) ** 2).mean())
    assert m["sortino"] == pytest.approx(s.mean() / downside * np.sqrt(252))
    with_start = pd.concat([pd.Series([1.0]), equity])
    assert m["max_drawdown"] == pytest.approx((1 - with_start / with_start.cummax()).max())


def test_max_drawdown_is_a_positive_fraction_from_the_start() -> None:
    assert max_drawdown(np.array([1.0, 1.2, 0.9, 1.5, 1.2])) == pytest.approx(0.25)
    assert max_drawdown(np.array([1.0, 2.0, 3.0])) == 0.0
    # A first-bar loss is a drawdown from the starting capital.
    assert return_metrics(np.array([-0.1, 0.05]), 252)["max_drawdown"] == pytest.approx(0.1)


def test_degenerate_returns_give_finite_zeros() -> None:
    flat = return_metrics(np.zeros(10), 252)
    assert flat["sharpe"] == flat["sortino"] == flat["total_return"] == 0.0
    gains = return_metrics(np.full(5, 0.01), 252)
    assert gains["sortino"] == 0.0  # no losing bar: undefined, reported as 0
    assert all(np.isfinite(v) for v in gains.values())
    assert return_metrics(np.array([]), 252)["sharpe"] == 0.0
    assert return_metrics(np.array([-1.0, 0.1]), 252)["annualized_return"] == -1.0


def test_pooled_ic_equals_scipy_spearman_with_ties() -> None:
    rng = np.random.default_rng(1)
    pred = np.round(rng.uniform(size=500), 1)  # many ties
    real = pred * 0.01 + rng.normal(0, 0.02, 500)
    real[:50] = 0.0  # ties in the returns too
    ts = np.arange(500)
    expected = spearmanr(pred, real).statistic
    assert spearman_ic(ts, pred, real, n_symbols=1) == pytest.approx(expected, abs=1e-12)
    assert spearman_ic(ts, pred, real, n_symbols=2) == pytest.approx(expected, abs=1e-12)


def test_cross_sectional_ic_averages_scipy_per_timestamp() -> None:
    rng = np.random.default_rng(2)
    n_ts, k = 200, 5
    ts = np.repeat(np.arange(n_ts), k)
    pred = np.round(rng.uniform(size=n_ts * k), 1)
    real = pred * 0.01 + rng.normal(0, 0.01, n_ts * k)
    pred[:k] = 0.5  # a constant cross-section: skipped
    real[k] = np.nan  # a missing return: that row ignored, its cross-section keeps 4
    order = rng.permutation(n_ts * k)  # row order must not matter
    got = spearman_ic(ts[order], pred[order], real[order], n_symbols=k)
    per_ts = []
    for t in range(1, n_ts):
        sel = (ts == t) & np.isfinite(real)
        per_ts.append(spearmanr(pred[sel], real[sel]).statistic)
    per_ts = [c for c in per_ts if np.isfinite(c)]
    assert got == pytest.approx(np.mean(per_ts), abs=1e-12)
    assert got > 0.1


def test_ic_without_evidence_is_zero() -> None:
    assert spearman_ic(np.arange(3), np.ones(3), np.arange(3.0), n_symbols=1) == 0.0
    assert spearman_ic(np.arange(1), np.ones(1), np.ones(1), n_symbols=1) == 0.0


def test_position_metrics() -> None:
    pos = np.array([0, 1, 1, -1, 0, -1.0])
    gross = pos * np.array([0.1, 0.2, -0.1, -0.3, 0.4, 0.0])
    delta = np.abs(np.diff(np.r_[0.0, pos]))  # 0 1 0 2 1 1
    m = position_metrics(pos, gross, delta)
    assert m["exposure"] == pytest.approx(4 / 6)
    assert m["hit_rate"] == pytest.approx(2 / 4)  # +0.2 and the short's +0.3; a 0 is no hit
    assert m["turnover"] == pytest.approx(5 / 6)
    assert m["n_trades"] == 4
    assert position_metrics(np.zeros(3), np.zeros(3), np.zeros(3))["hit_rate"] == 0.0


def test_aligned_length_detects_one_calendar() -> None:
    ts = np.tile(np.arange(5), 3)
    assert aligned_length(ts, 3) == 5
    assert aligned_length(ts, 2) is None  # 15 rows are not 2 blocks
    assert aligned_length(np.r_[ts[:-1], 9], 3) is None  # a symbol on another calendar
    assert aligned_length(np.tile([0, 2, 1], 3), 3) is None  # not sorted by time
    assert aligned_length(np.array([], dtype=np.int64), 3) is None


def test_cross_sectional_ic_on_one_calendar_matches_the_general_path_and_scipy() -> None:
    rng = np.random.default_rng(3)
    k, n_ts = 6, 300
    ts = np.tile(np.arange(n_ts), k)  # symbol-major, sorted by time: the backtest's layout
    pred = np.round(rng.uniform(size=k * n_ts), 1)
    real = np.round(pred * 0.01 + rng.normal(0, 0.01, k * n_ts), 3)
    pred[ts == 0] = 0.5  # a constant cross-section: skipped
    fast = spearman_ic(ts, pred, real, n_symbols=k)
    order = rng.permutation(k * n_ts)
    general = spearman_ic(ts[order], pred[order], real[order], n_symbols=k)
    per_ts = [spearmanr(pred[ts == t], real[ts == t]).statistic for t in range(1, n_ts)]
    per_ts = [c for c in per_ts if np.isfinite(c)]
    assert fast == pytest.approx(general, abs=1e-12)
    assert fast == pytest.approx(np.mean(per_ts), abs=1e-12)


@pytest.mark.parametrize("n_symbols", [1, 5])
def test_ic_computed_in_parallel_matches_a_reference(n_symbols: int) -> None:
    """Big enough that both rankings run on threads; checked against Polars' own ranks."""
    rng = np.random.default_rng(0)
    t = 120_000 // n_symbols
    ts = np.tile(np.arange(t), n_symbols)
    pred = np.round(rng.normal(size=ts.size), 2)  # ties
    real = pred * 0.1 + rng.normal(size=ts.size)
    if n_symbols > 1:  # ragged cross-sections: the group-by ranking path, not the grid
        keep = np.arange(ts.size) % 7 != 3
        ts, pred, real = ts[keep], pred[keep], real[keep]
    frame = pl.DataFrame({"t": ts, "p": pred, "r": real})
    if n_symbols == 1:
        expected = frame.select(pl.corr(pl.col("p").rank(), pl.col("r").rank())).item()
    else:
        per_time = frame.group_by("t").agg(
            pl.corr(pl.col("p").rank(), pl.col("r").rank()), pl.len().alias("n")
        )
        expected = per_time.filter(pl.col("n") >= 3).get_column("p").fill_nan(None).mean()
    assert spearman_ic(ts, pred, real, n_symbols=n_symbols) == pytest.approx(expected, abs=1e-12)


def test_sharpe_is_mean_over_sample_std_scaled_by_sqrt_periods() -> None:
    r = pd.Series([0.01, -0.005, 0.02, 0.0, -0.01])
    per_period = r.mean() / r.std(ddof=1)
    assert sharpe(r.to_numpy()) == pytest.approx(per_period, rel=1e-12)
    assert sharpe(r.to_numpy(), 252) == pytest.approx(per_period * np.sqrt(252), rel=1e-12)
    assert return_metrics(r.to_numpy(), 252)["sharpe"] == sharpe(r.to_numpy(), 252)


def test_sharpe_without_evidence_is_none_and_zero_in_the_backtest_metrics() -> None:
    for r in (np.array([]), np.array([0.01]), np.full(5, 0.002)):
        assert sharpe(r, 365) is None
        assert return_metrics(r, 365)["sharpe"] == 0.0
