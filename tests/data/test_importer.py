from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tradeloop.data.importer import import_bars
from tradeloop.data.simulator import simulate
from tradeloop.data.snapshot import content_hash, write_snapshot
from tradeloop.data.validation import validate_bars
from tradeloop.errors import DataError
from tradeloop.spec import ColumnMapping, SimulatorSpec, ValidationRules

YAHOO = """\
,Date,Open,High,Low,Close,Adj Close,Volume
0,2024-01-05,181.99,182.76,180.17,181.18,180.91,"62,303,300"
1,2024-01-04,182.15,183.09,180.88,181.91,181.64,71983600
2,2024-01-03,184.22,185.88,183.43,184.25,183.98,58414500
3,2024-01-02,187.15,188.44,183.89,185.64,185.36,82488700
4,2023-12-29,193.90,194.40,191.73,192.53,192.25,42628800
"""

FX = """\
Local time;Open;High;Low;Close
02.01.2024 00:00:00.000 GMT+0100;1.10391;1.10412;1.10350;1.10398
02.01.2024 01:00:00.000 GMT+0100;1.10398;1.10450;1.10380;1.10440
02.01.2024 02:00:00.000 GMT+0100;1.10440;1.10441;1.10301;1.10322
"""


def _mapping(**kw: object) -> ColumnMapping:
    return ColumnMapping.model_validate(kw)


def _titled(**kw: object) -> ColumnMapping:
    """A mapping onto the usual Open/High/Low/Close column names, plus `kw`."""
    return _mapping(open="Open", high="High", low="Low", close="Close", **kw)


def test_daily_equity_csv_with_unnamed_index_and_newest_first(tmp_path: Path) -> None:
    (tmp_path / "aapl.csv").write_text(YAHOO)
    m = _titled(
        timestamp="Date",
        timezone="America/New_York",
        symbol_value="AAPL",
        volume="Volume",
    )
    bars = import_bars("*.csv", tmp_path, m, "csv")
    bars, report = validate_bars(bars, timedelta(days=1), "weekdays", ValidationRules())
    assert report.ok
    assert bars["timestamp"][0] == datetime(2023, 12, 29, 5, tzinfo=UTC)  # NY midnight in UTC
    assert bars["volume"][-1] == 62_303_300.0
    # Jan 1st (a holiday) is a one-bar gap: a warning, not an error
    assert [i.code for i in report.warnings] == ["unordered", "gaps"]


def test_fx_hourly_with_format_and_no_volume(tmp_path: Path) -> None:
    (tmp_path / "eurusd.csv").write_text(FX.replace(";", ","))
    m = _titled(
        timestamp="Local time",
        format="%d.%m.%Y %H:%M:%S%.f GMT%z",
        symbol_value="EURUSD",
        volume=None,
    )
    bars = import_bars("eurusd.csv", tmp_path, m, "csv")
    assert bars["timestamp"].to_list()[0] == datetime(2024, 1, 1, 23, tzinfo=UTC)
    assert bars["volume"].to_list() == [0.0, 0.0, 0.0]
    _, report = validate_bars(bars, timedelta(hours=1), "weekdays", ValidationRules())
    assert report.ok


def test_missing_column_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(YAHOO)
    m = _mapping(
        timestamp="Date",
        symbol_value="A",
        open="Open",
        high="Hi",
        low="Low",
        close="Close",
        volume="Volume",
    )
    with pytest.raises(DataError, match=r"columns.high names column 'Hi'"):
        import_bars("a.csv", tmp_path, m, "csv")


def test_bad_number_and_bad_date_are_named(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(YAHOO.replace("182.76", "n/a"))
    m = _titled(
        timestamp="Date",
        symbol_value="A",
        volume="Volume",
    )
    with pytest.raises(DataError, match=r"column 'High' \(high\) has a non-number: 'n/a'"):
        import_bars("a.csv", tmp_path, m, "csv")
    (tmp_path / "a.csv").write_text(YAHOO)
    with pytest.raises(DataError, match=r"does not match columns\.format"):
        import_bars("a.csv", tmp_path, _mapping(**{**m.model_dump(), "format": "%d/%m/%Y"}), "csv")


def test_no_files(tmp_path: Path) -> None:
    m = _mapping(symbol_value="A")
    with pytest.raises(DataError, match="matches no file"):
        import_bars("*.csv", tmp_path, m, "csv")


def test_csv_and_parquet_give_the_same_snapshot_hash(tmp_path: Path) -> None:
    bars = simulate(SimulatorSpec(symbols=["X", "Y"], bars=200), timedelta(hours=1))
    shuffled = bars.sample(fraction=1.0, shuffle=True, seed=1)
    csv_df = shuffled.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.f"))
    csv_df.rename({"timestamp": "time", "symbol": "ticker"}).write_csv(tmp_path / "b.csv")
    bars.write_parquet(tmp_path / "b.parquet")
    m = _mapping(timestamp="time", symbol="ticker")
    from_csv = import_bars("b.csv", tmp_path, m, "csv")
    from_pq = import_bars(
        "b.parquet", tmp_path, _mapping(timestamp="timestamp", symbol="symbol"), "parquet"
    )
    assert content_hash(from_csv) == content_hash(from_pq) == content_hash(bars)
    changed = bars.with_columns(
        pl.when(pl.int_range(pl.len()) == 5)
        .then(pl.col("close") + 1e-9)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    assert content_hash(changed) != content_hash(bars)
    a = write_snapshot(from_csv, tmp_path / "snaps")
    b = write_snapshot(from_pq, tmp_path / "snaps")
    assert a == b and Path(a.path).exists()
    assert pl.read_parquet(a.path).equals(bars.sort("symbol", "timestamp"))


def test_excel_export_with_sep_line_padded_header_crlf_and_blank_lines(tmp_path: Path) -> None:
    text = (
        "sep=;\r\n Date ; Open;High;Low;Close\r\n2024-01-02;1.5;2;1;1.8\r\n\r\n"
        "2024-01-03;1.8;2.2;1.7;x\r\n\r\n"
    )
    (tmp_path / "x.csv").write_text(text, newline="")
    m = _titled(
        timestamp="Date",
        symbol_value="A",
        volume=None,
    )
    # the blank line is dropped, and the error still points at the right line of the file
    with pytest.raises(
        DataError, match=r"x\.csv: column 'Close' \(close\) has a non-number: 'x' \(line 5\)"
    ):
        import_bars("x.csv", tmp_path, m, "csv")
    (tmp_path / "x.csv").write_text(text.replace(";x", ";2.1"), newline="")
    bars = import_bars("x.csv", tmp_path, m, "csv")
    assert bars["close"].to_list() == [1.8, 2.1]
