"""Validate bars before anything is built on them; errors refuse the data, warnings are kept.

Errors: missing or non-finite values, non-positive prices, low/high that do not bound open and
close, negative volume, duplicated (symbol, timestamp), gaps longer than `max_gap_bars` when set.
Warnings: rows out of time order (they are sorted), gaps against the expected frequency (weekends
do not count on the `weekdays` calendar, including the FX weekend from Friday 17:00 New York;
holidays show up as short gaps), bars off the frequency grid, and outlier returns beyond
`outlier_sigma` robust standard deviations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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


DAY_US = 86_400_000_000
_NEW_YORK = ZoneInfo("America/New_York")  # the FX week: Sunday 17:00 to Friday 17:00 here
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ny_17(day: int) -> int:
    """17:00 New York time on a day (days since 1970-01-01), in UTC microseconds."""
    local = datetime.combine((_EPOCH + timedelta(days=day)).date(), time(17), tzinfo=_NEW_YORK)
    return int((local - _EPOCH).total_seconds()) * 1_000_000


def _inside(ts: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> bool:
    """Whether any timestamp lies strictly inside one of the sorted, disjoint intervals."""
    j = np.searchsorted(starts, ts, side="left") - 1  # the last start < ts
    return bool(np.any((j >= 0) & (ts < ends[np.maximum(j, 0)])))


def _weekend_windows(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Each weekend of a series, in UTC microseconds: Saturday and Sunday (UTC), or the FX
    weekend, Friday 17:00 to Sunday 17:00 New York (21:00 or 22:00 UTC with daylight saving),
    on whichever side the series shows it: a market with bars after 17:00 New York on Fridays
    closes at midnight UTC; one with bars on Sunday evenings opens at 17:00 New York.

    Returns the starts (inclusive), the ends, and whether the ends are inclusive: they are
    unless some bar is stamped exactly at one, so bar-start and bar-end timestamps both fit."""
    day0 = int(ts[0]) // DAY_US - 7
    friday = day0 + (1 - day0) % 7  # 1970-01-01 was a Thursday
    fridays = np.arange(friday, int(ts[-1]) // DAY_US + 8, 7)
    fri_close = np.array([_ny_17(int(d)) for d in fridays], dtype=np.int64)
    sun_open = np.array([_ny_17(int(d) + 2) for d in fridays], dtype=np.int64)
    saturday, monday = (fridays + 1) * DAY_US, (fridays + 3) * DAY_US
    starts = saturday if _inside(ts, fri_close, saturday) else fri_close
    ends = sun_open if _inside(ts, sun_open - 1, monday) else monday
    return starts, ends, not bool(np.isin(ends, ts).any())


def _excused_intraday(ts: np.ndarray, idx: np.ndarray, step_us: int) -> np.ndarray:
    """For the gaps after bars `idx`, how many expected slots a + k*step (0 < k < n) strictly
    between a = ts[i] and b = ts[i+1] fall in a weekend: counted exactly, across several too."""
    ws, we, inclusive = _weekend_windows(ts)
    a, b = ts[idx], ts[idx + 1]
    n = (b - a) // step_us
    j = np.searchsorted(we, a, side="left")  # the first weekend ending at or after a
    excused = np.zeros(a.size, dtype=np.int64)
    while True:
        jj = np.minimum(j, ws.size - 1)
        live = (j < ws.size) & (ws[jj] < b)
        if not live.any():
            return excused
        k_lo = np.maximum(1, -((a - ws[jj]) // step_us))  # ceil((ws - a) / step)
        last = (we[jj] - a) // step_us if inclusive else -((a - we[jj]) // step_us) - 1
        k_hi = np.minimum(n - 1, last)
        excused += np.where(live, np.maximum(k_hi - k_lo + 1, 0), 0)
        j = j + 1


def _missing_bars(ts: np.ndarray, step_us: int, weekdays: bool) -> np.ndarray:
    """Expected bars missing between consecutive timestamps (weekend bars excused if asked).

    Daily and longer bars: Saturday and Sunday dates are excused. Intraday bars: the slots in
    the series' weekends (`_weekend_windows`), so an hourly FX file that stops Friday 21:00/22:00
    UTC and resumes Sunday 21:00/22:00 UTC has no gap, and a missing hour on a weekday, or on a
    Sunday evening of a market that trades then, still counts.
    """
    gaps: np.ndarray = np.maximum(np.diff(ts) // step_us - 1, 0)
    if not weekdays or len(ts) < 2:
        return gaps
    if step_us < DAY_US:
        out = gaps.copy()
        idx = np.flatnonzero(gaps)
        if idx.size:
            out[idx] -= _excused_intraday(ts, idx, step_us)
        excused: np.ndarray = np.maximum(out, 0)
        return excused
    # weekend days between a and b: Saturdays/Sundays fully inside (a, b)
    d0 = ts[:-1] // DAY_US
    d1 = ts[1:] // DAY_US
    days_between = np.maximum(d1 - d0 - 1, 0)
    weekday0 = (d0 + 3) % 7  # 1970-01-01 was a Thursday (=3, Monday=0)
    full_weeks, rest = np.divmod(days_between, 7)
    weekend_days = full_weeks * 2
    for k in range(1, 7):
        wd = (weekday0 + k) % 7
        weekend_days += ((rest >= k) & (wd >= 5)).astype(np.int64)
    result: np.ndarray = np.maximum(gaps - weekend_days, 0)
    return result


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
        start.isoformat() if start is not None else None,  # type: ignore[union-attr]  # polars types min()/max() as any literal; a Datetime column gives datetime
        end.isoformat() if end is not None else None,  # type: ignore[union-attr]  # polars types min()/max() as any literal; a Datetime column gives datetime
        issues,
    )
    return bars, report
