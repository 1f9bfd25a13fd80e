from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

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


def _fx_hours(start: datetime, end: datetime) -> pl.DataFrame:
    """Hourly bars of the FX week: Sunday 17:00 to Friday 17:00 New York, in UTC."""
    ts = pl.datetime_range(start, end, "1h", time_zone="UTC", eager=True, closed="left")
    ny = ts.dt.convert_time_zone("America/New_York")
    wd, hour = ny.dt.weekday(), ny.dt.hour()  # Monday = 1 .. Sunday = 7
    ts = ts.filter((wd <= 4) | ((wd == 5) & (hour < 17)) | ((wd == 7) & (hour >= 17)))
    close = 1.10 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 8e-4, ts.len())))
    return pl.DataFrame(
        {
            "timestamp": ts,
            "symbol": "EURUSD",
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": 1.0,
        }
    )


FX_YEAR = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))


def test_the_fx_weekend_is_not_a_gap_across_daylight_saving() -> None:
    bars = _fx_hours(*FX_YEAR)  # US and EU clocks change on different weekends in 2024
    ts = bars["timestamp"]
    assert (
        datetime(2024, 1, 5, 21, tzinfo=UTC) in ts
        and datetime(2024, 1, 5, 22, tzinfo=UTC) not in ts
    )
    assert (
        datetime(2024, 7, 5, 20, tzinfo=UTC) in ts
        and datetime(2024, 7, 5, 21, tzinfo=UTC) not in ts
    )
    rules = ValidationRules(max_gap_bars=5)  # a 48-bar weekend would be an error if counted
    for stamped in (bars, bars.with_columns(pl.col("timestamp") + H)):  # bar start or bar end
        _, report = validate_bars(stamped, H, "weekdays", rules)
        assert report.ok and not report.warnings, report.summary()
    _, report = validate_bars(bars, H, "continuous", ValidationRules())
    (gap,) = report.warnings  # the weekends are real gaps on a 24/7 calendar
    assert gap.code == "gaps" and gap.count == 52


@pytest.mark.parametrize(
    "missing",
    [
        datetime(2024, 3, 13, 10, tzinfo=UTC),  # mid-week
        datetime(2024, 1, 12, 21, tzinfo=UTC),  # Friday 16:00 New York, the last winter hour
        datetime(2024, 7, 12, 20, tzinfo=UTC),  # Friday 16:00 New York in summer
        datetime(2024, 1, 15, 0, tzinfo=UTC),  # Monday 00:00 UTC
        datetime(2024, 1, 14, 22, tzinfo=UTC),  # Sunday 17:00 New York: the week's first bar
    ],
)
def test_a_missing_fx_hour_is_still_reported(missing: datetime) -> None:
    bars = _fx_hours(*FX_YEAR).filter(pl.col("timestamp") != missing)
    assert bars.height == _fx_hours(*FX_YEAR).height - 1
    _, report = validate_bars(bars, H, "weekdays", ValidationRules())
    (gap,) = report.warnings
    assert gap.code == "gaps" and "1 expected bars missing in 1 gaps" in gap.message
    before = bars.filter(pl.col("timestamp") < missing)["timestamp"].max()
    assert gap.examples == [f"{before.isoformat()} (+1)"]  # type: ignore[union-attr]


def test_a_gap_over_several_weekends_counts_only_trading_hours() -> None:
    full = _fx_hours(*FX_YEAR)
    lost = pl.col("timestamp").is_between(
        datetime(2024, 4, 3, 12, tzinfo=UTC), datetime(2024, 4, 24, 12, tzinfo=UTC)
    )
    _, report = validate_bars(full.filter(~lost), H, "weekdays", ValidationRules())
    (gap,) = [i for i in report.warnings if i.code == "gaps"]  # (and one outlier return)
    assert f"{full.filter(lost).height} expected bars missing in 1 gaps" in gap.message


def test_hourly_weekdays_on_utc_days_are_clean_too() -> None:
    spec = SimulatorSpec(symbols=["A"], bars=2000, start=datetime(2024, 1, 1, tzinfo=UTC))
    bars = simulate(spec, H, "weekdays")  # Monday 00:00 to Friday 23:00 UTC
    _, report = validate_bars(bars, H, "weekdays", ValidationRules())
    assert report.ok and not report.warnings
