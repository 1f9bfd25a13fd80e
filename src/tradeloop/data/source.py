"""Where the spec's bars come from: the simulator or files, always validated before use."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tradeloop.data.importer import import_bars
from tradeloop.data.simulator import simulate
from tradeloop.data.validation import ValidationReport, validate_bars
from tradeloop.errors import DataError
from tradeloop.spec import DataSpec


def raw_bars(data: DataSpec, base: Path) -> pl.DataFrame:
    if data.source == "simulator":
        return simulate(data.simulator, data.frequency, data.calendar)
    assert data.path is not None and data.columns is not None  # the spec guarantees both
    return import_bars(data.path, base, data.columns, data.source)


def checked_bars(data: DataSpec, base: Path) -> tuple[pl.DataFrame, ValidationReport]:
    """Bars that passed validation, sorted; DataError (with the report) when any check fails."""
    bars, report = validate_bars(
        raw_bars(data, base), data.frequency, data.calendar, data.validation
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
