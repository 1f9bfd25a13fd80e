"""Import bars from CSV or Parquet through the spec's column mapping.

Real exchange files have an unnamed index column, semicolons or tabs, no header row, split date
and time columns, odd date formats, newest-first order, thousands separators, decimal commas and
missing days; the mapping says which columns matter and everything else is ignored. Anything
that could be read two ways (a decimal comma, a day/month order) is refused rather than guessed,
because a silently misread price trains a model on nonsense. Timestamps end up aware UTC.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

import numpy as np
import polars as pl

from tradeloop.data.csv_text import read_csv
from tradeloop.data.file_ref import FileRef
from tradeloop.data.numbers import PRICE_COLUMNS, adjust, parse_numbers
from tradeloop.data.simulator import BAR_SCHEMA
from tradeloop.data.timestamps import parse_timestamps
from tradeloop.errors import DataError
from tradeloop.spec import ColumnMapping

__all__ = ["PRICE_COLUMNS", "expand_paths", "import_bars", "import_file"]


def expand_paths(pattern: str, base: Path) -> list[Path]:
    p = Path(pattern)
    full = p if p.is_absolute() else base / p
    matches = sorted(Path(m) for m in glob.glob(str(full)))
    if not matches:
        raise DataError(f"data.path matches no file: {full}")
    return matches


def _read(path: Path, mapping: ColumnMapping, fmt: str) -> tuple[pl.DataFrame, FileRef]:
    try:
        if fmt == "parquet":
            raw, before = pl.read_parquet(path), 0
        else:
            raw, before = read_csv(path, mapping)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path.name}: cannot read {fmt.upper()}: {exc}") from exc
    lines = np.arange(raw.height) + 1 + before
    blank = raw.select(pl.all_horizontal(pl.all().is_null())).to_series()
    if blank.any():  # empty lines (Windows exports often end with one)
        raw, lines = raw.filter(~blank), lines[~blank.to_numpy()]
    stripped = [c.strip() for c in raw.columns]
    if len(set(stripped)) == len(stripped):  # " Open" in "Date, Open, High" is Open
        raw.columns = stripped
    if raw.height == 0:
        raise DataError(f"{path.name}: the file has no rows")
    return raw, FileRef(path.name, mapping, lines)


def _column(raw: pl.DataFrame, ref: str | int, role: str, name: str) -> pl.Series:
    if isinstance(ref, int):
        if ref >= raw.width:
            raise DataError(
                f"{name}: columns.{role} is column {ref} (0-based), but the file has "
                f"{raw.width} columns (0..{raw.width - 1})"
            )
        return raw.to_series(ref)
    if ref not in raw.columns:
        shown = ", ".join(repr(c) for c in raw.columns[:20])
        raise DataError(
            f"{name}: columns.{role} names column {ref!r}, which is not in the file "
            f"(columns: {shown})"
        )
    return raw[ref]


def _symbols(raw: pl.DataFrame, f: FileRef) -> pl.Series:
    mapping = f.mapping
    if mapping.symbol is not None:
        col = _column(raw, mapping.symbol, "symbol", f.name)
        return col.cast(pl.Utf8).str.strip_chars().alias("symbol")
    value = mapping.symbol_value
    if mapping.symbol_from_file is not None:
        m = re.search(mapping.symbol_from_file, f.name)
        if m is None or not m.group(1):
            raise DataError(
                f"{f.name}: columns.symbol_from_file {mapping.symbol_from_file!r} does not "
                "match this file name (its first group is the symbol)"
            )
        value = m.group(1)
    return pl.Series("symbol", [value] * raw.height, dtype=pl.Utf8)


def import_file(path: Path, mapping: ColumnMapping, fmt: str) -> pl.DataFrame:
    """One file to the bars schema (unsorted; validation checks order and duplicates)."""
    raw, f = _read(path, mapping, fmt)
    ts_refs = mapping.timestamp if isinstance(mapping.timestamp, list) else [mapping.timestamp]
    ts_cols = [_column(raw, r, "timestamp", f.name) for r in ts_refs]
    cols = {"symbol": _symbols(raw, f)}
    roles = [
        r for r in (*PRICE_COLUMNS, "volume", "adjusted_close") if getattr(mapping, r) is not None
    ]
    texts = {r: _column(raw, getattr(mapping, r), r, f.name) for r in roles}
    labels = " + ".join(f"#{r} (0-based)" if isinstance(r, int) else repr(r) for r in ts_refs)
    cols["timestamp"] = parse_timestamps(ts_cols, f, f"{f.name}: column {labels} (timestamp)")
    nums = {r: parse_numbers(c, r, f) for r, c in texts.items()}
    if "adjusted_close" in nums:
        nums = adjust(nums, f)
    cols.update(nums)
    cols.setdefault("volume", pl.Series("volume", [0.0] * raw.height, pl.Float64))
    frame = pl.DataFrame({k: v.alias(k) for k, v in cols.items()})
    return frame.select(BAR_SCHEMA.keys()).cast(BAR_SCHEMA)  # type: ignore[arg-type]  # dict invariance: values are DataTypes


def import_bars(pattern: str, base: Path, mapping: ColumnMapping, fmt: str) -> pl.DataFrame:
    frames = [import_file(p, mapping, fmt) for p in expand_paths(pattern, base)]
    return pl.concat(frames)
