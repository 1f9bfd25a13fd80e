"""Timestamp text to aware UTC datetimes: a given format, epoch numbers, or inference.

Inference tries every known layout and refuses a file that reads differently under two of them
(01/02/2024 with no day past the 12th): a guessed day/month order shifts every bar by weeks.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from tradeloop.data.file_ref import FileRef
from tradeloop.errors import DataError

_SAMPLE = 1000  # rows tried per candidate timestamp format before parsing them all

_T = ("%H:%M:%S%.f", "%H:%M:%S", "%H:%M")
# Tried when the mapping gives no format. Both day/month orders are tried: a file that reads
# differently under two formats (01/02/2024 and nothing after the 12th) is refused as ambiguous.
_FORMATS = (
    *(f"%Y-%m-%d{sep}{t}" for t in _T for sep in (" ", "T")),
    "%Y-%m-%d",
    *(f"%Y{s}%m{s}%d {t}" for s in "./" for t in _T),
    "%Y.%m.%d",
    "%Y/%m/%d",
    "%Y%m%d %H%M%S",
    "%Y%m%d %H%M",
    "%Y%m%d %H:%M:%S",
    "%Y%m%d %H:%M",
    "%Y%m%d%H%M%S",
    "%Y%m%d",
    *(f"%d{s}%m{s}%Y {t}" for s in "./-" for t in _T),
    *(f"%d{s}%m{s}%Y" for s in "./-"),
    *(f"%m{s}%d{s}%Y {t}" for s in "./-" for t in _T),
    *(f"%m{s}%d{s}%Y" for s in "./-"),
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%d.%m.%Y %H:%M:%S%.f GMT%z",  # Dukascopy: 02.01.2024 00:00:00.000 GMT+0100
)


def _infer(text: pl.Series, where: str) -> pl.Series:
    sample = text.head(_SAMPLE)
    hits: list[tuple[str, pl.Series]] = []
    for f in _FORMATS:
        if sample.str.strptime(pl.Datetime("us"), f, strict=False).null_count():
            continue
        parsed = text.str.strptime(pl.Datetime("us"), f, strict=False)
        if parsed.null_count() == 0:
            hits.append((f, parsed))
    for f, parsed in hits[1:]:
        differ = parsed.dt.replace_time_zone(None) != hits[0][1].dt.replace_time_zone(None)
        if differ.any():
            ex = text.filter(differ)[0]
            raise DataError(
                f"{where}: timestamps are ambiguous: {ex!r} reads as {hits[0][0]!r} and as "
                f"{f!r}; set columns.format"
            )
    if hits:
        return hits[0][1]
    try:
        return text.str.to_datetime(time_unit="us")
    except pl.exceptions.PolarsError as exc:
        raise DataError(
            f"{where}: cannot read timestamps like {text[0]!r}; set columns.format "
            "(a strptime format such as '%m/%d/%Y')"
        ) from exc


def parse_timestamps(cols: list[pl.Series], f: FileRef, where: str) -> pl.Series:
    """The timestamp column(s) (several are joined with a space) as aware UTC datetimes."""
    mapping, col = f.mapping, cols[0]
    if len(cols) == 1 and col.dtype in (pl.Datetime, pl.Date):
        tz = col.dtype.time_zone if isinstance(col.dtype, pl.Datetime) else None
        ts = col.cast(pl.Datetime("us", tz))
    else:
        parts = pl.DataFrame(
            {str(i): c.cast(pl.Utf8).str.strip_chars() for i, c in enumerate(cols)}
        )
        text = parts.select(pl.concat_str(pl.all(), separator=" ")).to_series()
        if text.null_count():
            i = int(text.is_null().arg_max() or 0)
            raise DataError(
                f"{where}: {text.null_count()} rows have no timestamp (first at {f.line(i)})"
            )
        if mapping.format:
            ts = text.str.strptime(pl.Datetime("us"), mapping.format, strict=False)
            if ts.null_count():
                i = int(ts.is_null().arg_max() or 0)
                raise DataError(
                    f"{where}: timestamp {text[i]!r} ({f.line(i)}) does not match "
                    f"columns.format {mapping.format!r}"
                )
        elif text.str.contains(r"^\d{10,13}$").all():
            n = text.cast(pl.Int64)
            unit: Literal["ms", "s"] = "ms" if n.max() > 10**11 else "s"  # type: ignore[operator]  # max() of an int column is an int
            ts = pl.from_epoch(n, time_unit=unit).cast(pl.Datetime("us"))
        else:
            ts = _infer(text, where)
    dtype = ts.dtype
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return ts.dt.convert_time_zone("UTC")
    try:
        utc = ts.dt.replace_time_zone(
            mapping.timezone, ambiguous="earliest", non_existent="null"
        ).dt.convert_time_zone("UTC")
    except pl.exceptions.PolarsError as exc:
        raise DataError(
            f"{where}: columns.timezone {mapping.timezone!r} is not a known zone"
        ) from exc
    if utc.null_count():
        i = int(utc.is_null().arg_max() or 0)
        raise DataError(
            f"{where}: local time {ts[i].isoformat()} ({f.line(i)}) does not exist "
            f"in columns.timezone {mapping.timezone!r} (a daylight-saving change)"
        )
    return utc
