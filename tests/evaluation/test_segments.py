"""Segment reports: point-in-time regimes, flagged segments, drawdowns worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy.stats import ttest_ind

from tradeloop.evaluation.segments import (
    MIN_HISTORY,
    TEST,
    VOL_WINDOW,
    regimes,
    segment_report,
    welch_less,
)


def _bars(n: int, symbols: tuple[str, ...], step: timedelta, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for s in symbols:
        vol = np.where(np.arange(n) % 200 < 100, 0.005, 0.02)  # calm and wild stretches
        close = 100 * np.exp(np.cumsum(rng.normal(0, vol)))
        rows += [{"timestamp": t0 + i * step, "symbol": s, "close": c} for i, c in enumerate(close)]
    return pl.DataFrame(rows).with_columns(pl.col("timestamp").dt.cast_time_unit("us"))


def test_regimes_use_only_past_bars() -> None:
    bars = _bars(600, ("A",), timedelta(hours=1))
    before = regimes(bars)
    k = 400
    changed = bars.with_columns(
        pl.when(pl.int_range(pl.len()) > k)
        .then(pl.col("close") * 3.0)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    after = regimes(changed)
    assert before.head(k + 1).equals(after.head(k + 1))  # bars <= k never see the change
    assert not before.equals(after)
    warm = VOL_WINDOW + MIN_HISTORY - 1
    assert before["vol_regime"][: warm - 1].null_count() == warm - 1
    assert set(before["vol_regime"].drop_nulls()) == {"low", "mid", "high"}


def _ledger(bars: pl.DataFrame, losing: str) -> pl.DataFrame:
    rng = np.random.default_rng(5)
    return bars.select("timestamp", "symbol").with_columns(
        pl.when(pl.col("symbol") == losing)
        .then(-0.01)
        .otherwise(pl.lit(0.001) + pl.Series(rng.normal(0, 0.002, bars.height)))
        .alias("net_return")
    )


def test_a_losing_symbol_is_flagged_with_its_drawdown() -> None:
    bars = _bars(300, ("A", "B", "C"), timedelta(days=1))
    ledger = _ledger(bars, "B")
    rep = segment_report(ledger, bars, timedelta(days=1), 365.0)
    assert rep["test"] == TEST
    by = {(s["family"], s["segment"]): s for s in rep["segments"]}
    b = by[("symbol", "B")]
    # 300 bars of -1% each: equity 0.99^300, drawdown 1 - 0.99^300 from the start
    assert b["max_drawdown"] == pytest.approx(1 - 0.99**300)
    assert b["total_return"] == pytest.approx(0.99**300 - 1)
    assert b["mean_bps"] == pytest.approx(-100.0)
    assert b["flagged"] and b["p_adjusted"] < 0.05
    assert "symbol=B" in rep["flagged"] and "symbol=A" not in rep["flagged"]
    assert rep["max_segment_drawdown"] == pytest.approx(1 - 0.99**300)
    # daily bars: weekdays, but no hours
    families = {s["family"] for s in rep["segments"]}
    assert "weekday" in families and "hour" not in families
    assert {"volatility", "trend", "symbol"} <= families


def test_hours_only_below_a_day_and_nothing_calendar_for_weeks() -> None:
    hourly = _bars(300, ("A", "B"), timedelta(hours=1))
    fams = {
        s["family"]
        for s in segment_report(_ledger(hourly, "A"), hourly, timedelta(hours=1), 8760.0)[
            "segments"
        ]
    }
    assert {"hour", "weekday"} <= fams
    weekly = _bars(300, ("A", "B"), timedelta(weeks=1))
    fams = {
        s["family"]
        for s in segment_report(_ledger(weekly, "A"), weekly, timedelta(weeks=1), 52.0)["segments"]
    }
    assert not fams & {"hour", "weekday"}


def test_welch_matches_scipy_and_allows_one_constant_side() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(0, 1, 40), rng.normal(0.5, 2, 60)
    expected = ttest_ind(a, b, equal_var=False, alternative="less").pvalue
    assert welch_less(a, b) == pytest.approx(expected)
    assert welch_less(np.full(10, -1.0), b) == pytest.approx(0.0, abs=1e-6)
    assert welch_less(np.zeros(10), np.zeros(10)) is None
