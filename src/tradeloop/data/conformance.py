"""The conformance suite every data source passes, built-in or plug-in.

`check_data_source` returns the ways a source breaks the contract in `tradeloop.data.source`,
one sentence each, and an empty list when it conforms; it raises nothing itself. A plug-in's
own test is one line:

    assert check_data_source(MySource(), data, tmp_path, bad=[(broken, "no such table")]) == []

`data` must describe well-formed bars, in time order, without repeats (the suite checks that
the source hands them over unchanged in shape and order); `bad` pairs input the source must
refuse with the text its `BadInput` must contain.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from tradeloop.data.simulator import BAR_SCHEMA
from tradeloop.data.source import DataSource
from tradeloop.errors import BadInput
from tradeloop.spec import DataSpec

__all__ = ["check_data_source"]

_KEY = ("symbol", "timestamp")


def check_data_source(
    source: DataSource,
    data: DataSpec,
    base: Path,
    *,
    bad: Sequence[tuple[DataSpec, str]] = (),
) -> list[str]:
    """Every contract failure of `source` on `data` (good) and `bad` (to refuse); [] if none."""
    if not isinstance(source, DataSource):
        return [f"{type(source).__name__} has no bars(data, base) method"]
    bars, failure = _call(source, data, base)
    if bars is None:
        return [failure]
    failures = _schema_failures(bars)
    if not failures:
        failures += _row_failures(bars)
    again, failure = _call(source, data, base)
    if again is None:
        failures.append(f"a second call with the same spec failed: {failure}")
    elif not again.equals(bars):
        failures.append("two calls with the same spec gave different bars (not deterministic)")
    for spec, expect in bad:
        failures += _bad_input_failures(source, spec, base, expect)
    return failures


def _call(source: DataSource, data: DataSpec, base: Path) -> tuple[pl.DataFrame | None, str]:
    try:
        bars = source.bars(data, base)
    except Exception as exc:  # any exception is a finding the report names, not a crash
        return None, f"bars() raised {type(exc).__name__} for well-formed input: {exc}"
    if not isinstance(bars, pl.DataFrame):
        return None, f"bars() returned {type(bars).__name__}, not a polars DataFrame"
    return bars, ""


def _schema_failures(bars: pl.DataFrame) -> list[str]:
    expected = list(BAR_SCHEMA)
    if bars.columns != expected:
        return [f"columns are {bars.columns}; the bars contract says {expected}"]
    out: list[str] = []
    ts = bars.schema["timestamp"]
    if isinstance(ts, pl.Datetime) and ts.time_zone != "UTC":
        out.append(f"timestamp is in time zone {ts.time_zone!r}, not UTC")
    for name, dtype in BAR_SCHEMA.items():
        if bars.schema[name] != dtype:
            out.append(f"column {name!r} is {bars.schema[name]}, not {dtype}")
    return out


def _row_failures(bars: pl.DataFrame) -> list[str]:
    if bars.height == 0:
        return ["no bars for a spec that describes some"]
    key = [pl.col(c) for c in _KEY]
    nulls = bars.select(pl.sum_horizontal(k.null_count() for k in key)).item()
    if nulls:
        return [f"{nulls} null symbol(s) or timestamp(s)"]
    out: list[str] = []
    repeats = bars.filter(pl.struct(key).is_duplicated())
    if repeats.height:
        first = repeats.row(0, named=True)
        out.append(
            f"{repeats.height} rows repeat a (symbol, timestamp), "
            f"e.g. ({first['symbol']}, {first['timestamp']})"
        )
    if not bars.equals(bars.sort(*_KEY, maintain_order=True)):
        out.append("rows are not sorted by (symbol, timestamp)")
    return out


def _bad_input_failures(source: DataSource, spec: DataSpec, base: Path, expect: str) -> list[str]:
    try:
        source.bars(spec, base)
    except BadInput as exc:
        if expect.lower() not in str(exc).lower():
            return [f"the BadInput for bad input does not say {expect!r}: {exc}"]
        return []
    except Exception as exc:  # the wrong kind of error is a finding too
        return [f"bad input ({expect!r}) raised {type(exc).__name__}, not BadInput: {exc}"]
    return [f"bad input ({expect!r}) was accepted; it should raise BadInput"]
