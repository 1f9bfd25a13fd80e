"""Drift on files: what `tradeloop drift REFERENCE CURRENT` reads and runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from tradeloop.errors import BadInput
from tradeloop.monitoring.drift.profiles import ReferenceProfile
from tradeloop.monitoring.drift.report import drift_report
from tradeloop.monitoring.drift.result import DriftReport
from tradeloop.spec import DriftSpec

__all__ = ["compare_files", "load_reference", "load_table"]


def load_table(path: str | Path) -> pl.DataFrame:
    """Read a CSV or Parquet file (by suffix) with polars."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            return pl.read_csv(p, infer_schema_length=None)
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(p)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise BadInput(f"{p}: cannot read it: {exc}") from exc
    raise BadInput(f"{p}: unknown format {suffix or '(no suffix)'!r}: use .csv or .parquet")


def load_reference(path: str | Path) -> pl.DataFrame | ReferenceProfile:
    """A reference table (.csv, .parquet) or a saved `ReferenceProfile` (.json)."""
    if Path(path).suffix.lower() == ".json":
        return ReferenceProfile.load(path)
    return load_table(path)


def compare_files(
    reference: str | Path,
    current: str | Path,
    spec: DriftSpec | None = None,
    columns: Sequence[str] | None = None,
) -> DriftReport:
    """`drift_report` on files."""
    return drift_report(load_reference(reference), load_table(current), spec, columns)
