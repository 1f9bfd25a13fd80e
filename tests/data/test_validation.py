from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from tradeloop.data.simulator import simulate
from tradeloop.data.validation import validate_bars
from tradeloop.spec import SimulatorSpec, ValidationRules

H = timedelta(hours=1)


def _bars(n: int = 300) -> pl.DataFrame:
    return simulate(SimulatorSpec(symbols=["A", "B"], bars=n), H)


def test_simulated_bars_are_clean() -> None:
    _, report = validate_bars(_bars(), H, "continuous", ValidationRules())
    assert report.ok and report.rows == 600 and report.symbols == ["A", "B"]
    assert not report.warnings


def test_duplicate_timestamp_is_an_error() -> None:
    b = _bars()
    b = pl.concat([b, b.head(1)])
    _, report = validate_bars(b, H, "continuous", ValidationRules())
    assert not report.ok and report.errors[0].code == "duplicate_timestamps"


def test_high_below_low_is_an_error() -> None:
    b = (
        _bars()
        .with_row_index()
        .with_columns(
            high=pl.when(pl.col("index") == 10).then(pl.col("low") * 0.9).otherwise(pl.col("high"))
        )
        .drop("index")
    )
    _, report = validate_bars(b, H, "continuous", ValidationRules())
    codes = {i.code for i in report.errors}
    assert "high_below_open_close" in codes


def test_nan_negative_volume_and_bad_price() -> None:
    b = _bars().with_row_index()
    b = b.with_columns(
        close=pl.when(pl.col("index") == 3).then(float("nan")).otherwise(pl.col("close")),
        volume=pl.when(pl.col("index") == 7).then(-1.0).otherwise(pl.col("volume")),
    ).drop("index")
    _, report = validate_bars(b, H, "continuous", ValidationRules())
    assert {i.code for i in report.errors} >= {"non_finite", "negative_volume"}


def test_unsorted_rows_are_sorted_with_a_warning() -> None:
    b = _bars().reverse()
    out, report = validate_bars(b, H, "continuous", ValidationRules())
    assert report.ok and "unordered" in {i.code for i in report.warnings}
    assert out.equals(_bars())


def test_gaps_warn_and_weekends_are_excused() -> None:
    spec = SimulatorSpec(symbols=["A"], bars=200, start=datetime(2024, 1, 1, tzinfo=UTC))
    daily = simulate(spec, timedelta(days=1), "weekdays")
    _, report = validate_bars(daily, timedelta(days=1), "weekdays", ValidationRules())
    assert report.ok and not report.warnings  # weekends are not gaps
    holiday = daily.filter(pl.col("timestamp") != datetime(2024, 1, 17, tzinfo=UTC))
    _, report = validate_bars(holiday, timedelta(days=1), "weekdays", ValidationRules())
    (gap,) = report.warnings
    assert gap.code == "gaps" and "1 expected bars missing" in gap.message
    _, strict = validate_bars(
        holiday.filter(
            ~pl.col("timestamp").is_between(
                datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 2, 20, tzinfo=UTC)
            )
        ),
        timedelta(days=1),
        "weekdays",
        ValidationRules(max_gap_bars=5),
    )
    assert not strict.ok and strict.errors[0].code == "gaps"


def test_outlier_return_warns() -> None:
    b = (
        _bars()
        .with_row_index()
        .with_columns(
            close=pl.when(pl.col("index") == 100)
            .then(pl.col("close") * 1.5)
            .otherwise(pl.col("close")),
            high=pl.when(pl.col("index") == 100)
            .then(pl.col("high") * 1.5)
            .otherwise(pl.col("high")),
        )
        .drop("index")
    )
    _, report = validate_bars(b, H, "continuous", ValidationRules())
    assert report.ok
    assert any(i.code == "outlier_returns" and i.symbol == "A" for i in report.warnings)
