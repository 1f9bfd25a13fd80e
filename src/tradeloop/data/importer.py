"""Import bars from CSV or Parquet through the spec's column mapping.

Real exchange files have an unnamed index column, odd date formats, newest-first order,
thousands separators and missing days; the mapping says which columns matter and everything
else is ignored. Timestamps end up timezone-aware UTC.
"""

from __future__ import annotations

import glob
from pathlib import Path

import polars as pl

from tradeloop.data.simulator import BAR_SCHEMA
from tradeloop.errors import DataError
from tradeloop.spec import ColumnMapping

PRICE_COLUMNS = ("open", "high", "low", "close")

# Tried in order when the mapping gives no format; ambiguous day/month orders are not guessed.
_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%Y%m%d %H:%M:%S",
    "%Y%m%d",
    "%Y.%m.%d %H:%M",
    "%Y.%m.%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d, %Y",
)


def expand_paths(pattern: str, base: Path) -> list[Path]:
    p = Path(pattern)
    full = p if p.is_absolute() else base / p
    matches = sorted(Path(m) for m in glob.glob(str(full)))
    if not matches:
        raise DataError(f"data.path matches no file: {full}")
    return matches


def _read(path: Path, fmt: str) -> pl.DataFrame:
    try:
        if fmt == "parquet":
            return pl.read_parquet(path)
        # Everything as text first: we decide types, with errors that name the column.
        return pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path.name}: cannot read {fmt.upper()}: {exc}") from exc


def _require(df: pl.DataFrame, column: str, role: str, path: Path) -> None:
    if column not in df.columns:
        shown = ", ".join(repr(c) for c in df.columns[:20])
        raise DataError(
            f"{path.name}: columns.{role} names column {column!r}, which is not in the file "
            f"(columns: {shown})"
        )


def _parse_timestamps(col: pl.Series, mapping: ColumnMapping, path: Path) -> pl.Series:
    if col.dtype == pl.Datetime or col.dtype == pl.Date:
        ts = col.cast(pl.Datetime("us", col.dtype.time_zone if col.dtype == pl.Datetime else None))
    else:
        text = col.cast(pl.Utf8).str.strip_chars()
        if text.null_count():
            raise DataError(f"{path.name}: {text.null_count()} rows have no timestamp")
        if mapping.format:
            try:
                ts = text.str.strptime(pl.Datetime("us"), mapping.format, strict=True)
            except pl.exceptions.PolarsError as exc:
                bad = text.str.strptime(pl.Datetime("us"), mapping.format, strict=False)
                first = text.filter(bad.is_null()).head(1).to_list()
                raise DataError(
                    f"{path.name}: timestamp {first[0] if first else '?'!r} does not match "
                    f"columns.format {mapping.format!r}"
                ) from exc
        elif text.str.contains(r"^\d{10,13}$").all():
            n = text.cast(pl.Int64)
            unit = "ms" if n.max() > 10**11 else "s"  # type: ignore[operator]
            ts = pl.from_epoch(n, time_unit=unit).cast(pl.Datetime("us"))
        else:
            ts = None
            for f in _FORMATS:
                parsed = text.str.strptime(pl.Datetime("us"), f, strict=False)
                if parsed.null_count() == 0:
                    ts = parsed
                    break
            if ts is None:
                try:
                    ts = text.str.to_datetime(time_unit="us")
                except pl.exceptions.PolarsError as exc:
                    raise DataError(
                        f"{path.name}: cannot read timestamps like {text[0]!r}; set "
                        f"columns.format (a strptime format such as '%m/%d/%Y')"
                    ) from exc
    dtype = ts.dtype
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return ts.dt.convert_time_zone("UTC")
    try:
        return ts.dt.replace_time_zone(
            mapping.timezone, ambiguous="earliest", non_existent="null"
        ).dt.convert_time_zone("UTC")
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"columns.timezone {mapping.timezone!r} is not a known zone") from exc


def _parse_numbers(col: pl.Series, role: str, path: Path) -> pl.Series:
    if col.dtype.is_numeric():
        return col.cast(pl.Float64)
    text = col.cast(pl.Utf8).str.strip_chars().str.replace_all(",", "")
    text = pl.Series(col.name, text).replace({"": None, "null": None, "NA": None, "nan": "NaN"})
    out = text.cast(pl.Float64, strict=False)
    bad = out.is_null() & text.is_not_null()
    if bad.any():
        first = text.filter(bad)[0]
        raise DataError(f"{path.name}: column {col.name!r} ({role}) has a non-number: {first!r}")
    return out


def import_file(path: Path, mapping: ColumnMapping, fmt: str) -> pl.DataFrame:
    """One file to the bars schema (unsorted; validation checks order and duplicates)."""
    raw = _read(path, fmt)
    if raw.height == 0:
        raise DataError(f"{path.name}: the file has no rows")
    _require(raw, mapping.timestamp, "timestamp", path)
    for role in PRICE_COLUMNS:
        _require(raw, getattr(mapping, role), role, path)
    if mapping.volume is not None:
        _require(raw, mapping.volume, "volume", path)
    if mapping.symbol is not None:
        _require(raw, mapping.symbol, "symbol", path)
        symbol = raw[mapping.symbol].cast(pl.Utf8).str.strip_chars().alias("symbol")
    else:
        symbol = pl.Series("symbol", [mapping.symbol_value] * raw.height, dtype=pl.Utf8)
    cols = {
        "timestamp": _parse_timestamps(raw[mapping.timestamp], mapping, path),
        "symbol": symbol,
    }
    for role in PRICE_COLUMNS:
        cols[role] = _parse_numbers(raw[getattr(mapping, role)], role, path)
    cols["volume"] = (
        _parse_numbers(raw[mapping.volume], "volume", path)
        if mapping.volume is not None
        else pl.Series("volume", [0.0] * raw.height, dtype=pl.Float64)
    )
    return pl.DataFrame({k: v.alias(k) for k, v in cols.items()}).cast(BAR_SCHEMA)  # type: ignore[arg-type]


def import_bars(pattern: str, base: Path, mapping: ColumnMapping, fmt: str) -> pl.DataFrame:
    frames = [import_file(p, mapping, fmt) for p in expand_paths(pattern, base)]
    return pl.concat(frames)
