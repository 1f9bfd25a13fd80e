"""Number text to Float64 with the mapping's decimal mark, and split/dividend adjustment.

A thousands mark is accepted only between real groups of three digits: "1,10391" must never
become 110391 (a decimal comma read as thousands), so whatever could be read two ways is
refused with the file, column, value and line.
"""

from __future__ import annotations

import re

import polars as pl

from tradeloop.data.file_ref import FileRef
from tradeloop.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")

# A number whose thousands separators are real groupings: 62,303,300 or 1,234.5 (decimal ".")
# and 1.234,5 (decimal ","). Anything else holding the thousands mark is refused.
_GROUPED = {
    ".": r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$",
    ",": r"^[+-]?\d{1,3}(\.\d{3})+(,\d*)?$",
}
_ONE_GROUP = {".": r"^[+-]?\d{1,3},\d{3}$", ",": r"^[+-]?\d{1,3}\.\d{3}$"}
_MISSING = {"": None, "null": None, "NULL": None, "NA": None, "N/A": None, "nan": "NaN"}


def parse_numbers(col: pl.Series, role: str, f: FileRef) -> pl.Series:
    """Text to Float64 with the mapping's decimal mark; thousands marks only in real groups."""
    if col.dtype.is_numeric():
        return col.cast(pl.Float64)
    dec = f.mapping.decimal
    thou = "," if dec == "." else "."
    text = col.cast(pl.Utf8).str.strip_chars().replace(_MISSING)
    text = text.str.replace(r"^([+-]?)[$€£¥]\s*", "${1}")  # Nasdaq.com: "$185.64"
    has_thou = text.str.contains(thou, literal=True).fill_null(False)
    bad = has_thou & ~text.str.contains(_GROUPED[dec]).fill_null(False)
    if bad.any():
        i = int(bad.arg_max() or 0)
        hint = (
            "; it looks like a decimal comma: set columns.decimal: ','"
            if dec == "." and re.fullmatch(r"[+-]?\d*,\d+", text[i])
            else (f"; set columns.decimal: '{thou}'" if dec == "," else "")
        )
        raise DataError(
            f"{f.column(role)} has {text[i]!r} at {f.line(i)}: not a number with decimal "
            f"mark {dec!r} (a {thou!r} is only accepted between groups of three digits){hint}"
        )
    explicit = "decimal" in f.mapping.model_fields_set
    if role in (*PRICE_COLUMNS, "adjusted_close") and not explicit and has_thou.any():
        one_group = text.filter(has_thou).str.contains(_ONE_GROUP[dec]).all()
        if one_group and not text.str.contains(dec, literal=True).any():
            ex = text.filter(has_thou)[0]
            raise DataError(
                f"{f.column(role)} has prices like {ex!r} and none with a {dec!r}: is that "
                f"thousands ({ex.replace(thou, '')}) or a decimal {thou!r}? Set "
                f"columns.decimal ('{dec}' or '{thou}') to say which"
            )
    clean = text.str.replace_all(thou, "", literal=True)
    if dec == ",":
        clean = clean.str.replace(",", ".", literal=True)
    out = clean.cast(pl.Float64, strict=False)
    bad = out.is_null() & text.is_not_null()
    if bad.any():
        i = int(bad.arg_max() or 0)
        raise DataError(f"{f.column(role)} has a non-number: {text[i]!r} ({f.line(i)})")
    return out


def adjust(nums: dict[str, pl.Series], f: FileRef) -> dict[str, pl.Series]:
    """Scale open/high/low/close by adj_close/close per row, so splits and dividends are not
    returns (and high >= close still holds); volume by close/adj_close, so dollar volume stays."""
    adj, close = nums.pop("adjusted_close"), nums["close"]
    bad = ((adj <= 0) | ~adj.is_finite() | (close <= 0)).fill_null(False)
    if bad.any():
        i = int(bad.arg_max() or 0)
        raise DataError(
            f"{f.column('adjusted_close')} is {adj[i]} at {f.line(i)} and close is "
            f"{close[i]}: cannot adjust, both must be > 0"
        )
    factor = adj / close
    return {k: (v / factor if k == "volume" else v * factor) for k, v in nums.items()}
