"""Where a model loses: after-cost performance and drawdown per segment of its backtest.

Segments of the backtest ledger's (symbol, decision bar) rows: each symbol; the volatility
regime (terciles) and trend regime at the decision bar; the weekday (bars of a day or shorter)
and the hour (bars shorter than a day). Regimes are point-in-time, from bars <= t only:

- volatility: the std of the last `VOL_WINDOW` one-bar log returns, placed by its percentile
  among that symbol's own last `HISTORY` volatility values (at least `MIN_HISTORY`; rows with
  less history get no regime), low <= 1/3 < mid <= 2/3 < high;
- trend: the sign of the return over the last `TREND_WINDOW` bars (up > 0 >= down).

A segment's returns are its equal-weight portfolio per bar (the mean net return of its rows at
each timestamp), compounded for its drawdown. It is flagged when its mean bar return is
significantly below the rest's: Welch's one-sided t-test, Holm-corrected over every segment in
the report, at `ALPHA`. The test treats bars as independent; autocorrelated returns make it
too eager, so a flag is a prompt to look, not proof.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import t as student_t

from tradeloop.evaluation.metrics import max_drawdown, sharpe

VOL_WINDOW = 24
TREND_WINDOW = 48
HISTORY = 500
MIN_HISTORY = 50
ALPHA = 0.05
_CHUNK = 4096
MIN_BARS = 5  # fewer bars in a segment (or its rest): reported, not tested
TEST = "Welch's t-test, one-sided (segment mean bar return < rest), Holm-corrected"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def regimes(bars: pl.DataFrame) -> pl.DataFrame:
    """timestamp, symbol, vol_regime, trend_regime (null while warming up), from bars <= t."""
    parts = []
    for (symbol,), part in (
        bars.sort("symbol", "timestamp")
        .partition_by("symbol", as_dict=True, maintain_order=True)
        .items()
    ):
        close = part.get_column("close").to_numpy().astype(np.float64)
        parts.append(
            pl.DataFrame(
                {
                    "timestamp": part.get_column("timestamp"),
                    "symbol": [symbol] * part.height,
                    "vol_regime": _vol_regime(close),
                    "trend_regime": _trend_regime(close),
                },
                schema_overrides={"vol_regime": pl.Utf8, "trend_regime": pl.Utf8},
            )
        )
    return pl.concat(parts) if parts else pl.DataFrame()


def _vol_regime(close: np.ndarray) -> list[str | None]:
    n = close.size
    logret = np.full(n, np.nan)
    logret[1:] = np.diff(np.log(close))
    vol = np.full(n, np.nan)
    if n > VOL_WINDOW:
        windows = np.lib.stride_tricks.sliding_window_view(logret[1:], VOL_WINDOW)
        vol[VOL_WINDOW:] = windows.std(axis=1, ddof=1)
    # percentile of vol[t] among the last HISTORY values up to t: a front-padded sliding
    # window, in chunks so memory stays bounded on long histories
    padded = np.concatenate((np.full(HISTORY - 1, np.nan), vol))
    windows = np.lib.stride_tricks.sliding_window_view(padded, HISTORY)
    pct = np.full(n, np.nan)
    for lo in range(0, n, _CHUNK):
        w, v = windows[lo : lo + _CHUNK], vol[lo : lo + _CHUNK, None]
        valid = np.isfinite(w).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = (w <= v).sum(axis=1) / valid
        pct[lo : lo + _CHUNK] = np.where(
            (valid >= MIN_HISTORY) & np.isfinite(v[:, 0]), share, np.nan
        )
    labels = np.where(pct <= 1 / 3, "low", np.where(pct <= 2 / 3, "mid", "high"))
    return [str(lab) if math.isfinite(p) else None for lab, p in zip(labels, pct, strict=True)]


def _trend_regime(close: np.ndarray) -> list[str | None]:
    out: list[str | None] = [None] * close.size
    for t in range(TREND_WINDOW, close.size):
        out[t] = "up" if close[t] > close[t - TREND_WINDOW] else "down"
    return out


def segment_report(
    ledger: pl.DataFrame, bars: pl.DataFrame, frequency: timedelta, ppy: float
) -> dict[str, Any]:
    """Segments of a backtest ledger (see the module docstring), worst drawdown, flags."""
    rows = ledger.select("timestamp", "symbol", "net_return").join(
        regimes(bars.select("timestamp", "symbol", "close")), on=["timestamp", "symbol"], how="left"
    )
    rows = rows.with_columns(
        pl.col("timestamp").dt.weekday().alias("_wd"), pl.col("timestamp").dt.hour().alias("_hr")
    )
    groups: list[tuple[str, str, pl.Expr]] = [
        ("symbol", str(s), pl.col("symbol") == s) for s in sorted(rows["symbol"].unique())
    ]
    for family, col, values in (
        ("volatility", "vol_regime", ("low", "mid", "high")),
        ("trend", "trend_regime", ("up", "down")),
    ):
        groups += [(family, v, pl.col(col) == v) for v in values]
    if frequency <= timedelta(days=1):
        groups += [
            ("weekday", WEEKDAYS[d - 1], pl.col("_wd") == d) for d in sorted(rows["_wd"].unique())
        ]
    if frequency < timedelta(days=1):
        groups += [("hour", f"{h:02d}", pl.col("_hr") == h) for h in sorted(rows["_hr"].unique())]
    segments = [_segment(rows, family, name, expr, ppy) for family, name, expr in groups]
    segments = [s for s in segments if s["bars"] > 0]
    _holm(segments)
    worst = max((s["max_drawdown"] for s in segments), default=0.0)
    return {
        "test": TEST,
        "alpha": ALPHA,
        "segments": segments,
        "flagged": [f"{s['family']}={s['segment']}" for s in segments if s["flagged"]],
        "max_segment_drawdown": worst,
        "regimes": {
            "volatility": f"std of {VOL_WINDOW} log returns, percentile in the last {HISTORY}",
            "trend": f"sign of the {TREND_WINDOW}-bar return",
        },
    }


def _portfolio(rows: pl.DataFrame) -> np.ndarray:
    by_bar = rows.group_by("timestamp").agg(pl.col("net_return").mean()).sort("timestamp")
    return by_bar.get_column("net_return").to_numpy()


def _segment(
    rows: pl.DataFrame, family: str, name: str, expr: pl.Expr, ppy: float
) -> dict[str, Any]:
    mask = expr.fill_null(False)
    inside, rest = _portfolio(rows.filter(mask)), _portfolio(rows.filter(~mask))
    equity = np.concatenate(([1.0], np.cumprod(1.0 + inside)))
    p = welch_less(inside, rest) if min(inside.size, rest.size) >= MIN_BARS else None
    return {
        "family": family,
        "segment": name,
        "bars": int(inside.size),
        "mean_bps": float(inside.mean() * 1e4) if inside.size else 0.0,
        "sharpe": sharpe(inside, ppy) or 0.0,
        "total_return": float(equity[-1] - 1.0),
        "max_drawdown": max_drawdown(equity),
        "p_value": p,
        "p_adjusted": None,
        "flagged": False,
    }


def welch_less(a: np.ndarray, b: np.ndarray) -> float | None:
    """One-sided Welch t-test p-value for mean(a) < mean(b); None when neither varies.

    Written out (not `scipy.stats.ttest_ind`) so a constant segment, e.g. always flat, is
    tested without scipy's precision warning: one zero variance is fine for Welch.
    """
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se2 = va + vb
    if not se2 > 0:
        return None
    t = (a.mean() - b.mean()) / math.sqrt(se2)
    df = se2**2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return float(student_t.cdf(t, df))


def _holm(segments: list[dict[str, Any]]) -> None:
    """Holm's step-down adjustment over the tested segments; flag those below ALPHA."""
    tested = sorted((s for s in segments if s["p_value"] is not None), key=lambda s: s["p_value"])
    m, running = len(tested), 0.0
    for i, s in enumerate(tested):
        running = max(running, min(1.0, (m - i) * s["p_value"]))
        s["p_adjusted"] = running
        s["flagged"] = running < ALPHA
