"""Where the spec's bars come from: a registry of data sources, always validated before use.

A data source turns the spec's `data` section into bars: a polars DataFrame with the bars
schema (`BAR_SCHEMA`: timestamp as Datetime("us", "UTC"), symbol, open, high, low, close,
volume) and one row per bar. It reads; it does not judge. Sorting, duplicates, gaps and bad
values are `validate_bars`' business, so a file written newest-first reaches `checked_bars`
in file order and comes out sorted, with a warning in the report. Input a source cannot read
at all (no such file, a column that is not there) is a `BadInput` naming the problem.

Sources are looked up by `data.source`. The spec lists the names it accepts
(`tradeloop.spec.DATA_SOURCES`); a test holds that list and this registry together, so a new
source is registered here and named there. `tradeloop.data.conformance.check_data_source`
is the suite every source passes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import polars as pl

from tradeloop.data.importer import import_bars
from tradeloop.data.simulator import simulate
from tradeloop.data.validation import ValidationReport, validate_bars
from tradeloop.errors import BadInput, DataError
from tradeloop.spec import DataSpec

__all__ = [
    "DataSource",
    "FileSource",
    "SimulatorSource",
    "checked_bars",
    "data_source",
    "data_source_names",
    "raw_bars",
    "register_data_source",
]


@runtime_checkable
class DataSource(Protocol):
    """What a source of bars provides; `base` is the folder relative paths in `data` start from."""

    def bars(self, data: DataSpec, base: Path) -> pl.DataFrame:
        """The bars `data` describes, in the bars schema; BadInput for input it cannot read."""
        ...


class SimulatorSource:
    """The seeded simulator (`data.simulator`): the same spec always gives the same bars."""

    def bars(self, data: DataSpec, base: Path) -> pl.DataFrame:
        return simulate(data.simulator, data.frequency, data.calendar)


@dataclass(frozen=True)
class FileSource:
    """CSV or Parquet files (`data.path`, a file or glob) read through `data.columns`."""

    format: Literal["csv", "parquet"]

    def bars(self, data: DataSpec, base: Path) -> pl.DataFrame:
        assert data.path is not None and data.columns is not None  # the spec guarantees both
        return import_bars(data.path, base, data.columns, self.format)


SourceFactory = Callable[[], DataSource]

_SOURCES: dict[str, SourceFactory] = {
    "simulator": SimulatorSource,
    "csv": lambda: FileSource("csv"),
    "parquet": lambda: FileSource("parquet"),
}


def register_data_source(name: str, factory: SourceFactory, *, replace: bool = False) -> None:
    """Make `factory()` the source for `data.source: name`; BadInput if the name is taken."""
    if name in _SOURCES and not replace:
        raise BadInput(f"data source '{name}' is already registered")
    _SOURCES[name] = factory


def data_source_names() -> tuple[str, ...]:
    """Every registered source name, sorted."""
    return tuple(sorted(_SOURCES))


def data_source(name: str) -> DataSource:
    """A fresh source registered as `name`; BadInput naming the known ones otherwise."""
    factory = _SOURCES.get(name)
    if factory is None:
        known = ", ".join(data_source_names())
        raise BadInput(f"unknown data source '{name}' (known: {known})")
    return factory()


def raw_bars(data: DataSpec, base: Path, live: Path | None = None) -> pl.DataFrame:
    """The bars of `data.source`, before validation (in the source's order), followed by the
    bars `tradeloop ingest` persisted under `live` when the spec has a `data.stream`. A live
    bar at a (symbol, timestamp) the history already holds is dropped: the history stands."""
    history = data_source(data.source).bars(data, base)
    if live is None or data.stream is None:
        return history
    from tradeloop.data.barstore import BarStore

    streamed = BarStore(live).read()
    if streamed.height == 0:
        return history
    streamed = streamed.join(
        history.select("symbol", "timestamp"), on=["symbol", "timestamp"], how="anti"
    )
    return pl.concat([history.select(streamed.columns), streamed], how="vertical")


def checked_bars(
    data: DataSpec, base: Path, live: Path | None = None
) -> tuple[pl.DataFrame, ValidationReport]:
    """Bars that passed validation, sorted; DataError (with the report) when any check fails.
    `live`: the project's persisted stream bars (`Project.live_bars_dir`), joined in."""
    bars, report = validate_bars(
        raw_bars(data, base, live), data.frequency, data.calendar, data.validation
    )
    if not report.ok:
        first = report.errors[0]
        raise DataError(
            f"data refused: {len(report.errors)} validation error(s); first: {first.code}: "
            f"{first.message} ({first.count} rows"
            + (f", e.g. {', '.join(first.examples[:3])}" if first.examples else "")
            + ")",
            report,
        )
    return bars, report
