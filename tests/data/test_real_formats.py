"""Real exchange exports through the column mapping: delimiters, decimal commas, split date and
time columns, files without a header, adjusted prices, and the examples/ projects end to end."""

from __future__ import annotations

import codecs
import gzip
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml

from tradeloop.data.csv_text import sniff_delimiter
from tradeloop.data.importer import import_bars
from tradeloop.data.validation import validate_bars
from tradeloop.errors import DataError, SpecError
from tradeloop.spec import ColumnMapping, ValidationRules, parse_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))

OHLC = {"open": "Open", "high": "High", "low": "Low", "close": "Close"}


def _m(**kw: Any) -> ColumnMapping:
    return ColumnMapping.model_validate(kw)


def _write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


# ------------------------------------------------------------------------------ delimiters

DUKAS_SEMI = """\
Local time;Open;High;Low;Close;Volume
02.01.2024 00:00:00.000 GMT+0100;1.10391;1.10412;1.10350;1.10398;1520.3
02.01.2024 01:00:00.000 GMT+0100;1.10398;1.10450;1.10380;1.10440;1311.9
"""


def test_semicolon_and_tab_files_are_sniffed(tmp_path: Path) -> None:
    m = _m(timestamp="Local time", symbol_value="EURUSD", volume="Volume", **OHLC)
    _write(tmp_path, "semi.csv", DUKAS_SEMI)
    _write(tmp_path, "tab.csv", DUKAS_SEMI.replace(";", "\t"))
    semi = import_bars("semi.csv", tmp_path, m, "csv")
    tab = import_bars("tab.csv", tmp_path, m, "csv")
    assert semi.equals(tab)
    assert semi["close"].to_list() == [1.10398, 1.10440]
    assert semi["timestamp"][0] == datetime(2024, 1, 1, 23, tzinfo=UTC)  # GMT+0100 honoured


def test_sniffing_picks_the_consistent_delimiter() -> None:
    assert sniff_delimiter("a|b|c\n1|2,5|3\n", "x") == "|"
    # no header, decimal comma: ',' is not a candidate, ';' splits every line the same way
    assert sniff_delimiter("20240102 000000;1,1;1,2\n20240102 010000;1,1;1,3\n", "x", ",") == ";"
    with pytest.raises(DataError, match=r"x: cannot tell the delimiter.*columns\.delimiter"):
        sniff_delimiter("just one column\nstill one\n", "x")


def test_explicit_delimiter_by_name_and_bad_delimiters(tmp_path: Path) -> None:
    _write(tmp_path, "p.csv", DUKAS_SEMI.replace(";", "|"))
    m = _m(timestamp="Local time", symbol_value="E", delimiter="pipe", volume=None, **OHLC)
    assert m.delimiter == "|"
    assert import_bars("p.csv", tmp_path, m, "csv").height == 2
    assert _m(symbol_value="E", delimiter="tab").delimiter == "\t"
    with pytest.raises(ValueError, match="delimiter must be one ASCII punctuation"):
        _m(symbol_value="E", delimiter="ab")
    with pytest.raises(ValueError, match="delimiter and decimal are both ','"):
        _m(symbol_value="E", delimiter=",", decimal=",")


# ---------------------------------------------------------------------------- decimal marks

EURO = """\
Datum;Eröffnung;Hoch;Tief;Schluss;Volumen
2024-01-02;1,10391;1,10412;1,10350;1,10398;1.234,5
2024-01-03;1,10398;1,10450;1,10380;1,10440;987
"""
EURO_MAP = {
    "timestamp": "Datum",
    "symbol_value": "EURUSD",
    "open": "Eröffnung",
    "high": "Hoch",
    "low": "Tief",
    "close": "Schluss",
    "volume": "Volumen",
}


def test_a_decimal_comma_is_never_read_as_thousands(tmp_path: Path) -> None:
    _write(tmp_path, "eu.csv", EURO)
    with pytest.raises(DataError) as exc:
        import_bars("eu.csv", tmp_path, _m(**EURO_MAP), "csv")
    msg = str(exc.value)
    assert "eu.csv" in msg and "'Eröffnung' (open)" in msg and "'1,10391'" in msg
    assert "line 2" in msg and "set columns.decimal: ','" in msg
    bars = import_bars("eu.csv", tmp_path, _m(decimal=",", **EURO_MAP), "csv")
    assert bars["open"].to_list() == [1.10391, 1.10398]
    assert bars["volume"].to_list() == [1234.5, 987.0]  # "1.234,5": '.' groups thousands


def test_windows_1252_export_with_umlauts_in_the_header(tmp_path: Path) -> None:
    (tmp_path / "eu.csv").write_bytes(EURO.encode("cp1252"))
    bars = import_bars("eu.csv", tmp_path, _m(decimal=",", **EURO_MAP), "csv")
    assert bars["close"].to_list() == [1.10398, 1.10440]


@pytest.mark.parametrize(
    ("value", "expected"),
    [('"62,303,300"', 62_303_300.0), ('"1,234.5"', 1234.5), ("1234.5", 1234.5), ("7", 7.0)],
)
def test_thousands_separators_in_real_groupings_are_accepted(
    tmp_path: Path, value: str, expected: float
) -> None:
    _write(
        tmp_path, "a.csv", f"Date,Open,High,Low,Close,Volume\n2024-01-02,1.5,2.5,1.0,2.0,{value}\n"
    )
    m = _m(timestamp="Date", symbol_value="A", volume="Volume", **OHLC)
    assert import_bars("a.csv", tmp_path, m, "csv")["volume"].to_list() == [expected]


@pytest.mark.parametrize("value", ['"1,10391"', '"12,3456"', '"1,23"', '"1,234,56"', '",5"'])
def test_anything_else_with_a_thousands_mark_is_refused(tmp_path: Path, value: str) -> None:
    _write(
        tmp_path, "a.csv", f"Date,Open,High,Low,Close,Volume\n2024-01-02,1.5,2.5,1.0,2.0,{value}\n"
    )
    m = _m(timestamp="Date", symbol_value="A", volume="Volume", **OHLC)
    bare = value.strip('"')
    with pytest.raises(DataError, match=rf"a\.csv: column 'Volume' \(volume\) has '{bare}'"):
        import_bars("a.csv", tmp_path, m, "csv")


def test_three_decimal_prices_are_ambiguous_unless_the_decimal_mark_is_given(
    tmp_path: Path,
) -> None:
    """USDJPY with a decimal comma: '157,123' is 157.123, or 157123 with a thousands comma."""
    _write(
        tmp_path,
        "jpy.csv",
        "Date;Open;High;Low;Close\n2024-01-02;157,123;157,456;156,987;157,201\n"
        "2024-01-03;157,201;157,390;156,802;157,010\n",
    )
    m = {"timestamp": "Date", "symbol_value": "USDJPY", "volume": None, **OHLC}
    with pytest.raises(DataError, match=r"jpy\.csv: column 'Open' \(open\).*'157,123'.*decimal"):
        import_bars("jpy.csv", tmp_path, _m(**m), "csv")
    assert import_bars("jpy.csv", tmp_path, _m(decimal=",", **m), "csv")["open"][0] == 157.123
    assert import_bars("jpy.csv", tmp_path, _m(decimal=".", **m), "csv")["open"][0] == 157123.0


# ------------------------------------------------------------------- date and time columns

MT5 = (
    "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
    "2024.01.02\t00:00\t1.10391\t1.10412\t1.10350\t1.10398\t1203\t0\t8\n"
    "2024.01.02\t01:00\t1.10398\t1.10450\t1.10380\t1.10440\t998\t0\t7\n"
)
MT5_MAP = {
    "timestamp": ["<DATE>", "<TIME>"],
    "timezone": "Europe/Athens",
    "symbol_value": "EURUSD",
    "open": "<OPEN>",
    "high": "<HIGH>",
    "low": "<LOW>",
    "close": "<CLOSE>",
    "volume": None,
}


def test_separate_date_and_time_columns_are_joined(tmp_path: Path) -> None:
    _write(tmp_path, "EURUSD_H1.csv", MT5)
    bars = import_bars("EURUSD_H1.csv", tmp_path, _m(**MT5_MAP), "csv")  # format inferred
    assert bars["timestamp"].to_list() == [
        datetime(2024, 1, 1, 22, tzinfo=UTC),  # 00:00 EET is 22:00 UTC
        datetime(2024, 1, 1, 23, tzinfo=UTC),
    ]
    explicit = import_bars("EURUSD_H1.csv", tmp_path, _m(**MT5_MAP, format="%Y.%m.%d %H:%M"), "csv")
    assert explicit.equals(bars)
    with pytest.raises(
        DataError,
        match=r"EURUSD_H1\.csv: column '<DATE>' \+ '<TIME>' \(timestamp\): timestamp "
        r"'2024\.01\.02 00:00' \(line 2\) does not match columns\.format",
    ):
        import_bars("EURUSD_H1.csv", tmp_path, _m(**MT5_MAP, format="%Y-%m-%d %H:%M"), "csv")
    with pytest.raises(DataError, match=r"columns\.timestamp names column '<TIME>'"):
        _write(tmp_path, "EURUSD_H1.csv", MT5.replace("<TIME>", "<HOUR>"))
        import_bars("EURUSD_H1.csv", tmp_path, _m(**MT5_MAP), "csv")


def test_stooq_daily_with_ticker_column_and_compact_date_time(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "stooq.txt",
        "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>\n"
        "AAPL.US,D,20240102,000000,187.15,188.44,183.89,185.64,82488700,0\n"
        "AAPL.US,D,20240103,000000,184.22,185.88,183.43,184.25,58414500,0\n",
    )
    m = _m(
        timestamp=["<DATE>", "<TIME>"],
        symbol="<TICKER>",
        open="<OPEN>",
        high="<HIGH>",
        low="<LOW>",
        close="<CLOSE>",
        volume="<VOL>",
    )
    bars = import_bars("stooq.txt", tmp_path, m, "csv")
    assert bars["symbol"].to_list() == ["AAPL.US"] * 2
    assert bars["timestamp"][1] == datetime(2024, 1, 3, tzinfo=UTC)


def test_nasdaq_download_with_dollar_prices_and_month_first_dates(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "HistoricalData_AAPL.csv",
        "Date,Close/Last,Volume,Open,High,Low\n"
        "01/03/2024,$184.25,58414460,$184.22,$185.88,$183.43\n"
        "01/02/2024,$185.64,82488670,$187.15,$188.44,$183.89\n"
        "12/29/2023,$192.53,42672150,$193.90,$194.40,$191.73\n",
    )
    m = _m(
        timestamp="Date",
        timezone="America/New_York",
        symbol_value="AAPL",
        open="Open",
        high="High",
        low="Low",
        close="Close/Last",
        volume="Volume",
    )
    bars = import_bars("Historical*.csv", tmp_path, m, "csv")  # 12/29: only month-first fits
    assert bars["timestamp"][2] == datetime(2023, 12, 29, 5, tzinfo=UTC)
    assert bars["close"].to_list() == [184.25, 185.64, 192.53]


def test_day_month_order_is_never_guessed(tmp_path: Path) -> None:
    m = _m(timestamp="Date", symbol_value="A", volume=None, **OHLC)
    rows = "Date,Open,High,Low,Close\n{},1,2,0.5,1.5\n{},1,2,0.5,1.5\n"
    _write(tmp_path, "a.csv", rows.format("01/02/2024", "03/02/2024"))
    with pytest.raises(DataError, match=r"a\.csv: column 'Date' \(timestamp\): .*ambiguous.*"):
        import_bars("a.csv", tmp_path, m, "csv")
    _write(tmp_path, "a.csv", rows.format("01/02/2024", "13/02/2024"))  # only day-first fits
    assert import_bars("a.csv", tmp_path, m, "csv")["timestamp"][1] == datetime(
        2024, 2, 13, tzinfo=UTC
    )


def test_a_local_time_skipped_by_daylight_saving_is_named(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "ny.csv",
        "Time,Open,High,Low,Close\n2024-03-10 01:30,1,2,0.5,1.5\n2024-03-10 02:30,1,2,0.5,1.5\n",
    )
    m = _m(timestamp="Time", timezone="America/New_York", symbol_value="A", volume=None, **OHLC)
    with pytest.raises(DataError, match=r"ny\.csv.*2024-03-10T02:30:00 \(line 3\) does not exist"):
        import_bars("ny.csv", tmp_path, m, "csv")


# --------------------------------------------------------------------------- no header row

HISTDATA = """\
20240102 000000;1.10391;1.10412;1.10350;1.10398;0
20240102 000100;1.10398;1.10405;1.10390;1.10401;0
20240102 000200;1.10401;1.10420;1.10399;1.10415;0
"""


def test_headerless_histdata_by_position(tmp_path: Path) -> None:
    _write(tmp_path, "DAT_ASCII_EURUSD_M1_2024.csv", HISTDATA)
    m = _m(
        header=False,
        timestamp=0,
        format="%Y%m%d %H%M%S",
        timezone="Etc/GMT+5",  # HistData: EST all year, no daylight saving
        symbol_from_file=r"DAT_ASCII_([A-Z]{6})_",
        open=1,
        high=2,
        low=3,
        close=4,
        volume=None,
    )
    bars = import_bars("DAT_*.csv", tmp_path, m, "csv")
    assert bars["symbol"].to_list() == ["EURUSD"] * 3
    assert bars["timestamp"][0] == datetime(2024, 1, 2, 5, tzinfo=UTC)
    assert bars["close"].to_list() == [1.10398, 1.10401, 1.10415]  # nothing lost to a header
    _, report = validate_bars(bars, timedelta(minutes=1), "weekdays", ValidationRules())
    assert report.ok and [i.code for i in report.warnings] == ["no_volume"]
    wide = m.model_copy(update={"close": 9})
    with pytest.raises(DataError, match=r"columns\.close is column 9 \(0-based\), but the file"):
        import_bars("DAT_*.csv", tmp_path, wide, "csv")
    text = HISTDATA.replace("1.10401;0", "1.1040x;0")
    _write(tmp_path, "DAT_ASCII_EURUSD_M1_2024.csv", text)
    with pytest.raises(DataError, match=r"column #4 \(0-based\) \(close\) has a non-number"):
        import_bars("DAT_*.csv", tmp_path, m, "csv")


def test_spec_refuses_names_without_a_header_and_positions_with_one() -> None:
    base = "name: t\ndata:\n  source: csv\n  path: a.csv\n  columns:\n"
    with pytest.raises(SpecError) as exc:
        parse_spec(base + "    header: false\n    symbol_value: A\n    timestamp: 0\n")
    msg = str(exc.value)
    assert "tradeloop.yaml:5: data.columns: header is false" in msg
    assert "open is the name 'open'" in msg and "timestamp" not in msg.split("but", 1)[1]
    with pytest.raises(SpecError, match=r"header is true.*timestamp\[1\] is position 1"):
        parse_spec(base + "    symbol_value: A\n    timestamp: [Date, 1]\n")
    with pytest.raises(SpecError, match="Parquet columns always have names"):
        parse_spec(
            base.replace("csv", "parquet")
            + "    header: false\n    symbol_value: A\n    timestamp: 0\n"
            "    open: 1\n    high: 2\n    low: 3\n    close: 4\n    volume: null\n"
        )
    with pytest.raises(SpecError, match=r"positions are 0-based \(>= 0\), but timestamp is -1"):
        parse_spec(base + "    header: false\n    symbol_value: A\n    timestamp: -1\n")
    with pytest.raises(SpecError, match="exactly one of 'symbol'"):
        parse_spec(base + "    symbol_value: A\n    symbol_from_file: '(x)'\n")
    with pytest.raises(SpecError, match="symbol_from_file needs a group"):
        parse_spec(base + "    symbol_from_file: 'x'\n")
    with pytest.raises(SpecError, match="timezone 'Mars/Olympus' is not a known zone"):
        parse_spec(base + "    symbol_value: A\n    timezone: Mars/Olympus\n")


def test_symbol_from_the_file_name(tmp_path: Path) -> None:
    row = "Date,Open,High,Low,Close\n2024-01-02,1,2,0.5,1.5\n"
    _write(tmp_path, "AAPL.csv", row)
    _write(tmp_path, "MSFT.csv", row)
    m = _m(timestamp="Date", symbol_from_file=r"^([A-Z]+)\.csv$", volume=None, **OHLC)
    assert sorted(import_bars("*.csv", tmp_path, m, "csv")["symbol"]) == ["AAPL", "MSFT"]
    _write(tmp_path, "brk.b.csv", row)
    with pytest.raises(DataError, match=r"brk\.b\.csv: columns\.symbol_from_file"):
        import_bars("*.csv", tmp_path, m, "csv")


def test_utf16_bom_and_gzip_files(tmp_path: Path) -> None:
    (tmp_path / "EURUSD_H1.csv").write_bytes(codecs.BOM_UTF16_LE + MT5.encode("utf-16-le"))
    (tmp_path / "GBPUSD_H1.csv.gz").write_bytes(gzip.compress(MT5.encode()))
    (tmp_path / "USDCHF_H1.csv").write_bytes(codecs.BOM_UTF8 + MT5.encode())
    m = _m(**{**MT5_MAP, "symbol_value": None, "symbol_from_file": "^([A-Z]{6})_"})
    bars = import_bars("*_H1.csv*", tmp_path, m, "csv")
    assert bars.group_by("symbol").len().sort("symbol").rows() == [
        ("EURUSD", 2),
        ("GBPUSD", 2),
        ("USDCHF", 2),
    ]


# --------------------------------------------------------------------------- adjusted prices


def _split_file(tmp: Path) -> Path:
    """Six weeks of a stock that splits 4:1 on 2024-01-22 (raw Close falls from ~400 to ~100)
    and pays a $1 dividend on 2024-02-01; Adj Close is adjusted for both."""
    rng = np.random.default_rng(3)
    days = [d for d in (datetime(2024, 1, 2) + timedelta(i) for i in range(45)) if d.weekday() < 5]
    total = 400 * np.cumprod(1 + rng.normal(0, 0.01, len(days)))  # total-return price path
    split = np.array([d < datetime(2024, 1, 22) for d in days])
    div = np.array([d < datetime(2024, 2, 1) for d in days])
    close = total / np.where(split, 1, 4) - np.where(div, 0, 1.0)
    adj = close * np.where(split, 0.25, 1) * np.where(div, 1 - 1.0 / close[div][-1], 1)
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    for d, c, a, s in zip(days, close, adj, split, strict=True):
        shares = 1_000_000 if s else 4_000_000
        lines.append(f"{d:%Y-%m-%d},{c * 0.995},{c * 1.01},{c * 0.99},{c},{a},{shares}")
    return _write(tmp, "split.csv", "\n".join(lines) + "\n")


def test_adjusted_close_removes_the_fake_split_return(tmp_path: Path) -> None:
    _split_file(tmp_path)
    base = {"timestamp": "Date", "symbol_value": "ACME", "volume": "Volume", **OHLC}
    rules = ValidationRules()
    raw, report = validate_bars(
        import_bars("split.csv", tmp_path, _m(**base), "csv"), timedelta(days=1), "weekdays", rules
    )
    jump = raw["close"] / raw["close"].shift(1) - 1
    assert jump.min() < -0.7  # the split looks like a crash
    assert [i.examples for i in report.warnings if i.code == "outlier_returns"] == [
        ["2024-01-22T00:00:00+00:00"]
    ]
    m = _m(adjusted_close="Adj Close", **base)
    adj, report = validate_bars(
        import_bars("split.csv", tmp_path, m, "csv"), timedelta(days=1), "weekdays", rules
    )
    assert report.ok and not report.warnings
    assert np.allclose(adj["close"], pl.read_csv(tmp_path / "split.csv")["Adj Close"])
    ret = (adj["close"] / adj["close"].shift(1) - 1).drop_nulls()
    assert ret.abs().max() < 0.05  # neither the split nor the dividend is a return
    assert (adj["high"] >= adj["close"]).all() and (adj["low"] <= adj["open"]).all()
    assert np.allclose(adj["open"] / adj["close"], 0.995)  # each bar keeps its shape
    # dollar volume is kept: before the split, 1M shares at 4x the adjusted price
    dollars = (adj["close"] * adj["volume"]).to_numpy()
    assert np.allclose(dollars, (raw["close"] * raw["volume"]).to_numpy())
    assert adj["volume"][0] == pytest.approx(4_000_000, rel=0.02)  # and ~1% for the dividend


def test_adjusted_close_must_be_positive(tmp_path: Path) -> None:
    p = _split_file(tmp_path)
    lines = p.read_text().splitlines()
    f = lines[2].split(",")
    lines[2] = ",".join([*f[:5], "0", f[6]])
    p.write_text("\n".join(lines) + "\n")
    m = _m(timestamp="Date", symbol_value="A", volume="Volume", adjusted_close="Adj Close", **OHLC)
    with pytest.raises(
        DataError,
        match=r"split\.csv: column 'Adj Close' \(adjusted_close\) is 0\.0 at line 3 and close",
    ):
        import_bars("split.csv", tmp_path, m, "csv")


# ------------------------------------------------------------------------ examples end to end


def test_example_data_regenerates_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(EXAMPLES / "make_data.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.glob("*/data/*"))
    assert made == sorted(p.relative_to(EXAMPLES) for p in EXAMPLES.glob("*/data/*"))
    for rel in made:
        assert (tmp_path / rel).read_bytes() == (EXAMPLES / rel).read_bytes(), rel
        assert (EXAMPLES / rel).stat().st_size < 2_000_000


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TRADELOOP_HOME", "TRADELOOP_DB_URL", "MLFLOW_TRACKING_URI")
    }
    return subprocess.run(
        [TRADELOOP, *args], cwd=cwd, env=env, text=True, capture_output=True, timeout=180
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("example", "rows", "symbols"),
    [
        ("daily-equities", 6036, ["ACME", "BOLT", "CRUX"]),
        ("fx-hourly", 24912, ["EURUSD", "GBPUSD"]),
    ],
)
def test_example_validates_checks_and_trains_a_registered_version(
    tmp_path: Path, example: str, rows: int, symbols: list[str]
) -> None:
    root = tmp_path / example
    shutil.copytree(EXAMPLES / example, root, ignore=shutil.ignore_patterns(".tradeloop"))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "example"], cwd=root, check=True)

    r = _cli("validate", "--json", cwd=root)
    assert r.returncode == 0, r.stderr
    r = _cli("data", "check", "--json", cwd=root)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] and report["rows"] == rows and report["symbols"] == symbols
    gaps = [w for w in report["warnings"] if w["code"] == "gaps"]
    assert gaps and all(w["count"] <= 80 for w in gaps)  # holidays, never weekends
    r = _cli("train", "--json", cwd=root)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["gates"]["passed"], doc["gates"]
    assert doc["version"] == "1"
    # Every configured walk-forward fold trained and was tested on the stated bars (the time
    # it takes is bench/'s business, not an assertion here).
    split = yaml.safe_load((root / "tradeloop.yaml").read_text())["training"]["split"]
    assert [f["fold"] for f in doc["folds"]] == list(range(split["folds"]))
    assert all(f["test_bars"] == split["test_bars"] for f in doc["folds"])
    r = _cli("models", "list", "--json", cwd=root)
    assert r.returncode == 0 and [v["version"] for v in json.loads(r.stdout)] == ["1"]
