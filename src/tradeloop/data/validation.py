"""Validate bars before anything is built on them; errors refuse the data, warnings are kept.

Errors: missing or non-finite values, non-positive prices, low/high that do not bound open and
close, negative volume, duplicated (symbol, timestamp), gaps longer than `max_gap_bars` when set.
Warnings: rows out of time order (they are sorted), gaps against the expected frequency (weekends
do not count on the `weekdays` calendar; holidays show up as short gaps), bars off the frequency
grid, and outlier returns beyond `outlier_sigma` robust standard deviations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from tradeloop.spec import ValidationRules

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Issue:
    code: str
    severity: str  # "error" | "warning"
    message: str
    count: int
    symbol: str | None = None
    examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ValidationReport:
    rows: int
    symbols: list[str]
    start: str | None
    end: str | None
    issues: list[Issue]

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "symbols": self.symbols,
            "start": self.start,
            "end": self.end,
            "errors": [asdict(i) for i in self.errors],
            "warnings": [asdict(i) for i in self.warnings],
        }

    def summary(self) -> str:
        head = f"{self.rows} rows, {len(self.symbols)} symbols, {self.start} .. {self.end}"
        lines = [head]
        for i in self.issues:
            where = f" [{i.symbol}]" if i.symbol else ""
            ex = f" e.g. {', '.join(i.examples)}" if i.examples else ""
            lines.append(f"  {i.severity.upper()} {i.code}{where}: {i.message}{ex}")
        return "\n".join(lines)


def _examples(df: pl.DataFrame, mask: pl.Series) -> list[str]:
    rows = df.filter(mask).head(MAX_EXAMPLES)
    return [f"{s}@{t.isoformat()}" for s, t in zip(rows["symbol"], rows["timestamp"], strict=True)]


def _value_checks(df: pl.DataFrame) -> list[Issue]:
    issues: list[Issue] = []
    values = ["open", "high", "low", "close", "volume"]
    missing = pl.any_horizontal([pl.col(c).is_null() | ~pl.col(c).is_finite() for c in values])
    m = df.select(missing.fill_null(True)).to_series()
    if m.any():
        issues.append(
            Issue(
                "non_finite",
                "error",
                "missing, NaN or infinite values",
                int(m.sum()),
                examples=_examples(df, m),
            )
        )
        df = df.filter(~m)
    checks = [
        (
            "non_positive_price",
            pl.min_horizontal("open", "high", "low", "close") <= 0,
            "prices must be > 0",
        ),
        (
            "low_above_open_close",
            pl.col("low") > pl.min_horizontal("open", "close"),
            "low must be <= open and close",
        ),
        (
            "high_below_open_close",
            pl.col("high") < pl.max_horizontal("open", "close"),
            "high must be >= open and close",
        ),
        ("negative_volume", pl.col("volume") < 0, "volume must be >= 0"),
    ]
    for code, expr, msg in checks:
        m = df.select(expr).to_series()
        if m.any():
            issues.append(Issue(code, "error", msg, int(m.sum()), examples=_examples(df, m)))
    return issues


def _missing_bars(ts: np.ndarray, step_us: int, weekdays: bool) -> np.ndarray:
    """Expected bars missing between consecutive timestamps (weekend bars excused if asked)."""
    gaps = np.diff(ts) // step_us - 1
    if not weekdays or len(ts) < 2:
        return np.maximum(gaps, 0)
    day_us = 86_400_000_000
    # weekend bars between a and b: count Saturdays/Sundays days fully inside (a, b)
    d0 = ts[:-1] // day_us
    d1 = ts[1:] // day_us
    days_between = np.maximum(d1 - d0 - 1, 0)
    weekday0 = (d0 + 3) % 7  # 1970-01-01 was a Thursday (=3, Monday=0)
    full_weeks, rest = np.divmod(days_between, 7)
    weekend_days = full_weeks * 2
    for k in range(1, 7):
        wd = (weekday0 + k) % 7
        weekend_days += ((rest >= k) & (wd >= 5)).astype(np.int64)
    bars_per_day = max(day_us // step_us, 1)
    excused = weekend_days * bars_per_day if step_us < day_us else weekend_days
    return np.maximum(gaps - excused, 0)


def _series_checks(
    df: pl.DataFrame, freq: timedelta, calendar: str, rules: ValidationRules
) -> list[Issue]:
    issues: list[Issue] = []
    step_us = int(freq.total_seconds() * 1_000_000)
    for (sym,), g in df.group_by(["symbol"], maintain_order=True):
        ts = g["timestamp"].cast(pl.Int64).to_numpy()
        if len(ts) < 2:
            continue
        missing = _missing_bars(ts, step_us, calendar == "weekdays")
        if missing.sum():
            where = np.nonzero(missing)[0][:MAX_EXAMPLES]
            ex = [f"{g['timestamp'][int(i)].isoformat()} (+{int(missing[i])})" for i in where]
            big = int(missing.max())
            severe = rules.max_gap_bars and big > rules.max_gap_bars
            issues.append(
                Issue(
                    "gaps",
                    "error" if severe else "warning",
                    f"{int(missing.sum())} expected bars missing in {int((missing > 0).sum())} gaps "
                    f"(longest {big} bars)",
                    int((missing > 0).sum()),
                    str(sym),
                    ex,
                )
            )
        off_grid = (np.diff(ts) % step_us) != 0
        if step_us < 86_400_000_000 and off_grid.any():
            issues.append(
                Issue(
                    "off_grid",
                    "warning",
                    f"bars not spaced by a multiple of {freq}",
                    int(off_grid.sum()),
                    str(sym),
                )
            )
        close = g["close"].to_numpy()
        r = np.diff(np.log(close))
        mad = np.median(np.abs(r - np.median(r))) * 1.4826
        if mad > 0:
            out = np.abs(r - np.median(r)) > rules.outlier_sigma * mad
            if out.any():
                where = np.nonzero(out)[0][:MAX_EXAMPLES] + 1
                issues.append(
                    Issue(
                        "outlier_returns",
                        "warning",
                        f"returns beyond {rules.outlier_sigma:g} robust sigmas",
                        int(out.sum()),
                        str(sym),
                        [g["timestamp"][int(i)].isoformat() for i in where],
                    )
                )
    return issues


def validate_bars(
    bars: pl.DataFrame, frequency: timedelta, calendar: str, rules: ValidationRules
) -> tuple[pl.DataFrame, ValidationReport]:
    """Check bars; return them sorted by (symbol, timestamp) with the report."""
    issues: list[Issue] = []
    if bars.height == 0:
        issues.append(Issue("empty", "error", "no bars", 0))
        return bars, ValidationReport(0, [], None, None, issues)
    null_ts = bars["timestamp"].is_null() | bars["symbol"].is_null()
    if null_ts.any():
        issues.append(
            Issue(
                "missing_key",
                "error",
                "rows without a timestamp or symbol "
                "(or a local time that does not exist in the timezone)",
                int(null_ts.sum()),
            )
        )
        bars = bars.filter(~null_ts)
    ordered = bars.select(
        (pl.col("timestamp").diff().over("symbol").fill_null(timedelta(1)) > timedelta(0)).all()
    ).item()
    if not ordered:
        issues.append(
            Issue(
                "unordered",
                "warning",
                "rows were not in increasing time order per symbol; they were sorted",
                0,
            )
        )
    bars = bars.sort("symbol", "timestamp")
    dup = bars.select(pl.struct("symbol", "timestamp").is_duplicated()).to_series()
    if dup.any():
        issues.append(
            Issue(
                "duplicate_timestamps",
                "error",
                "the same (symbol, timestamp) appears more than once",
                int(dup.sum()),
                examples=_examples(bars, dup),
            )
        )
    issues.extend(_value_checks(bars))
    if not any(i.severity == "error" for i in issues):
        issues.extend(_series_checks(bars, frequency, calendar, rules))
    if bars["volume"].max() == 0:
        issues.append(
            Issue(
                "no_volume",
                "warning",
                "volume is zero throughout: volume features will be empty",
                0,
            )
        )
    symbols = sorted(bars["symbol"].unique().to_list())
    start, end = bars["timestamp"].min(), bars["timestamp"].max()
    report = ValidationReport(
        bars.height,
        symbols,
        start.isoformat() if start is not None else None,  # type: ignore[union-attr]
        end.isoformat() if end is not None else None,  # type: ignore[union-attr]
        issues,
    )
    return bars, report
