"""Every registered data source passes the one conformance suite; the suite catches breakage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tradeloop.data.conformance import check_data_source
from tradeloop.data.simulator import simulate
from tradeloop.data.source import (
    SimulatorSource,
    checked_bars,
    data_source,
    data_source_names,
    raw_bars,
    register_data_source,
)
from tradeloop.errors import BadInput
from tradeloop.spec import DATA_SOURCES, DataSpec, SimulatorSpec

SIM = SimulatorSpec(symbols=["A", "B"], bars=60, seed=3)
FREQ = timedelta(hours=1)
Case = tuple[DataSpec, list[tuple[DataSpec, str]]]


def _files(fmt: str, base: Path) -> Case:
    """A two-symbol file of simulated bars, and input the source must refuse."""
    bars = simulate(SIM, FREQ)
    columns: dict[str, Any] = {"symbol": "symbol"}
    if fmt == "csv":
        text = bars.with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S"))
        text.write_csv(base / "bars.csv")
        (base / "bad.csv").write_text(
            "timestamp,symbol,open,high,low,close,volume\n2023-01-02T00:00:00,A,1,2,0.5,x,10\n"
        )
        unreadable = "non-number"
    else:
        bars.write_parquet(base / "bars.parquet")
        (base / "bad.parquet").write_bytes(b"not parquet at all")
        unreadable = "cannot read PARQUET"

    def spec(path: str, **cols: Any) -> DataSpec:
        return DataSpec.model_validate(
            {"source": fmt, "path": path, "frequency": "1h", "columns": {**columns, **cols}}
        )

    good = spec(f"bars.{fmt}")
    return good, [
        (spec(f"nothing*.{fmt}"), "matches no file"),
        (spec(f"bars.{fmt}", open="opening"), "'opening', which is not in the file"),
        (spec(f"bad.{fmt}"), unreadable),
    ]


CASES: dict[str, Callable[[Path], Case]] = {
    # the simulator's only input is its own spec section, which the spec validates
    "simulator": lambda base: (DataSpec(simulator=SIM, frequency=FREQ), []),
    "csv": lambda base: _files("csv", base),
    "parquet": lambda base: _files("parquet", base),
}


def test_the_spec_accepts_exactly_the_registered_sources() -> None:
    assert set(DATA_SOURCES) == set(data_source_names()) == set(CASES)


@pytest.mark.parametrize("name", data_source_names())
def test_source_conforms(name: str, tmp_path: Path) -> None:
    good, bad = CASES[name](tmp_path)
    assert check_data_source(data_source(name), good, tmp_path, bad=bad) == []


@pytest.mark.parametrize("name", data_source_names())
def test_checked_bars_reads_through_the_registry(name: str, tmp_path: Path) -> None:
    good, _ = CASES[name](tmp_path)
    bars, report = checked_bars(good, tmp_path)
    assert report.ok
    assert bars.equals(simulate(SIM, FREQ))


class _Broken:
    """A source that breaks every rule it can: unsorted, repeated, naive times, random."""

    def __init__(self) -> None:
        self.calls = 0

    def bars(self, data: DataSpec, base: Path) -> pl.DataFrame:
        self.calls += 1
        bars = simulate(data.simulator, data.frequency)
        bars = pl.concat([bars, bars.head(1)]).reverse()
        bars = bars.with_columns(pl.col("timestamp").dt.replace_time_zone(None))
        return bars.with_columns(pl.col("close") * self.calls)


def test_the_suite_names_each_broken_rule(tmp_path: Path) -> None:
    good = DataSpec(simulator=SIM, frequency=FREQ)
    failures = check_data_source(_Broken(), good, tmp_path)
    assert failures == [
        "timestamp is in time zone None, not UTC",
        "column 'timestamp' is Datetime(time_unit='us', time_zone=None), "
        "not Datetime(time_unit='us', time_zone='UTC')",
        "two calls with the same spec gave different bars (not deterministic)",
    ]
    utc = _Utc()
    failures = check_data_source(utc, good, tmp_path, bad=[(good, "anything")])
    assert failures == [
        "2 rows repeat a (symbol, timestamp), e.g. (A, 2023-01-02 00:00:00+00:00)",
        "rows are not sorted by (symbol, timestamp)",
        "bad input ('anything') was accepted; it should raise BadInput",
    ]


class _Utc:
    """Deterministic and UTC, but reversed with one bar repeated."""

    def bars(self, data: DataSpec, base: Path) -> pl.DataFrame:
        bars = simulate(data.simulator, data.frequency)
        return pl.concat([bars.head(1), bars]).reverse()


def test_the_suite_reports_a_source_that_cannot_read_good_input(tmp_path: Path) -> None:
    class Failing:
        def bars(self, data: DataSpec, base: Path) -> pl.DataFrame:
            raise OSError("disk on fire")

    (failure,) = check_data_source(Failing(), DataSpec(), tmp_path)
    assert failure == "bars() raised OSError for well-formed input: disk on fire"
    (failure,) = check_data_source(object(), DataSpec(), tmp_path)  # type: ignore[arg-type]  # not a source on purpose
    assert failure == "object has no bars(data, base) method"


def test_the_suite_refuses_an_empty_answer(tmp_path: Path) -> None:
    class Empty:
        def bars(self, data: DataSpec, base: Path) -> pl.DataFrame:
            return simulate(data.simulator, data.frequency).head(0)

    assert check_data_source(Empty(), DataSpec(simulator=SIM), tmp_path) == [
        "no bars for a spec that describes some"
    ]


def test_registry_refuses_a_taken_name_and_names_the_known_ones() -> None:
    with pytest.raises(BadInput, match="already registered"):
        register_data_source("simulator", SimulatorSource)
    with pytest.raises(BadInput, match=r"unknown data source 'feed' \(known: csv, parquet"):
        data_source("feed")


def test_raw_bars_keeps_the_file_order_for_validation_to_judge(tmp_path: Path) -> None:
    bars = simulate(SIM, FREQ)
    bars.reverse().write_parquet(tmp_path / "newest_first.parquet")
    data = DataSpec.model_validate(
        {"source": "parquet", "path": "newest_first.parquet", "columns": {"symbol": "symbol"}}
    )
    assert raw_bars(data, tmp_path).equals(bars.reverse())
    sorted_bars, report = checked_bars(data, tmp_path)
    assert sorted_bars.equals(bars)
    assert [w.code for w in report.warnings] == ["unordered"]
