"""Trading metrics of a backtest: return/risk ratios, drawdown, hit rate and the IC.

Conventions (every metric is a finite float, so gates, JSON and MLflow never meet NaN/inf):

- Returns are simple per-bar returns, net of costs; the equity curve compounds them from 1.0.
- `annualized_return` is geometric (CAGR over `n / periods_per_year` years);
  `annualized_volatility` is the sample std (ddof=1) times sqrt(periods_per_year).
- `sharpe` = mean / std * sqrt(ppy) with a zero risk-free rate (`sharpe`, the one definition
  the backtest and live grading share); `sortino` divides by the
  downside deviation sqrt(mean(min(r, 0)^2)) over all bars (target 0). A ratio whose
  denominator is zero (no variation, no losing bar, fewer than 2 bars) is 0.0: no evidence.
- `max_drawdown` is a positive fraction of the running peak, counted from the starting 1.0.
- `hit_rate`, `exposure` and `n_trades` are pooled over (symbol, bar) rows; `turnover` is the
  mean |Δposition| per bar (see `position_metrics`).
- `ic` is Spearman's rank correlation between prediction and the realized next-bar return
  (close[t+1] / close[t] - 1, whatever the execution delay: it grades the model, not the fills).
  With >= `MIN_CROSS_SECTION` symbols it is computed per timestamp across symbols and averaged
  over timestamps (the cross-sectional IC quants report); with fewer it is pooled over all
  (symbol, bar) pairs, i.e. a time-series IC. Degenerate cross-sections (constant ranks) are
  skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Literal

import numpy as np
import polars as pl

Calendar = Literal["continuous", "weekdays"]

MIN_CROSS_SECTION = 3
_MAX_PAIRWISE = 64  # symbols up to which ranks come from pairwise counts
TRADING_DAYS = 252
CALENDAR_DAYS = 365

RETURN_METRICS = (
    "total_return",
    "annualized_return",
    "annualized_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
)


def periods_per_year(frequency: timedelta, calendar: Calendar = "continuous") -> float:
    """Bars per year for annualizing.

    continuous (crypto, the simulator): 365 days of round-the-clock bars, so 1d -> 365 and
    1h -> 365 * 24 = 8760. weekdays (equities, FX): 252 trading days, so 1d -> 252 and
    1h -> 252 * 24 = 6048 (bars over the whole weekday, as the simulator makes them); bars
    longer than a day fall back to calendar time (1w -> ~52).
    """
    seconds = frequency.total_seconds()
    if seconds <= 0:
        raise ValueError(f"frequency must be positive, got {frequency}")
    day = 86400.0
    days = TRADING_DAYS if calendar == "weekdays" and seconds <= day else CALENDAR_DAYS
    return days * day / seconds


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a positive fraction (0.25 = a 25% drawdown)."""
    if equity.size == 0:
        return 0.0
    peak = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peak))


def sharpe(returns: np.ndarray, periods_per_year: float | None = None) -> float | None:
    """mean / std (ddof=1) of per-period returns, times sqrt(periods_per_year) when given
    (else per period), with a zero risk-free rate. None with fewer than 2 returns or no
    variation: no evidence is not a number (`return_metrics` reports that as 0.0)."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return None
    std = float(r.std(ddof=1))
    if not std > 0:
        return None
    ratio = float(r.mean()) / std
    return ratio * math.sqrt(periods_per_year) if periods_per_year else ratio


def return_metrics(returns: np.ndarray, ppy: float) -> dict[str, float]:
    """Total/annualized return, volatility, Sharpe, Sortino and max drawdown of net returns."""
    r = np.asarray(returns, dtype=np.float64)
    n = r.size
    if n == 0:
        return dict.fromkeys(RETURN_METRICS, 0.0)
    equity = np.cumprod(1.0 + r)
    growth = float(equity[-1])
    total = growth - 1.0
    annual = growth ** (ppy / n) - 1.0 if growth > 0 else -1.0
    mean = float(r.mean())
    std = float(r.std(ddof=1)) if n > 1 else 0.0
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    scale = math.sqrt(ppy)
    return {
        "total_return": total,
        "annualized_return": annual,
        "annualized_volatility": std * scale,
        "sharpe": sharpe(r, ppy) or 0.0,
        "sortino": mean / downside * scale if downside > 0 and n > 1 else 0.0,
        "max_drawdown": max_drawdown(np.concatenate(([1.0], equity))),
    }


def aligned_length(timestamps: np.ndarray, n_blocks: int) -> int | None:
    """T when the rows are `n_blocks` blocks of the same T strictly increasing timestamps
    (every symbol on one calendar, sorted by symbol then time: the usual backtest), else None.

    Such a layout reshapes to a (symbols, T) matrix, so cross-sections need no group-by.
    """
    n = timestamps.size
    if n_blocks < 1 or n == 0 or n % n_blocks:
        return None
    t = n // n_blocks
    grid = timestamps.reshape(n_blocks, t)
    if bool(np.all(grid[0, 1:] > grid[0, :-1])) and bool(np.all(grid == grid[0])):
        return t
    return None


def _ranks(values: np.ndarray, groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based; ties share their mean rank) of `values` within each group
    (all rows when `groups` is None), and dense group codes 0..G-1 per row.

    One sort: by value alone, or a multithreaded two-key sort by (group, value), which is
    ~10x faster than `rank().over()` on a million groups.
    """
    n = values.size
    if groups is None:
        order = np.argsort(values)
    else:
        frame = pl.DataFrame({"g": groups, "v": values})
        order = frame.select(pl.arg_sort_by(["g", "v"])).to_series().to_numpy()
    v = values[order]
    new_group = np.zeros(n, dtype=bool)
    new_group[0] = True
    if groups is not None:
        g = groups[order]
        new_group[1:] = g[1:] != g[:-1]
    elif not bool(np.any(v[1:] == v[:-1])):  # one group, no ties: ranks are positions
        ranks = np.empty(n, dtype=np.float64)
        ranks[order] = np.arange(1.0, n + 1.0)
        return ranks, np.zeros(n, dtype=np.int64)
    idx = np.arange(n)
    ordinal = idx - np.maximum.accumulate(np.where(new_group, idx, 0)) + 1.0
    new_run = new_group.copy()
    new_run[1:] |= v[1:] != v[:-1]
    run = np.cumsum(new_run) - 1
    avg = np.bincount(run, weights=ordinal) / np.bincount(run)
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = avg[run]
    codes = np.empty(n, dtype=np.int64)
    codes[order] = np.cumsum(new_group) - 1
    return ranks, codes


def _column_ranks(m: np.ndarray) -> np.ndarray:
    """Average ranks within each column of a (S, T) matrix, S small: #less + (#equal + 1) / 2,
    counted with S vectorized comparisons (faster than T tiny sorts, and exact on ties)."""
    less = np.zeros(m.shape, dtype=np.int16)
    equal = np.zeros(m.shape, dtype=np.int16)
    for j in range(m.shape[0]):
        np.add(less, m[j] < m, out=less, casting="unsafe")
        np.add(equal, m[j] == m, out=equal, casting="unsafe")
    return less + (equal + 1.0) / 2.0


def _pearson_columns(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation per column (einsum: no product temporaries, no threaded BLAS)."""
    dx, dy = x - x.mean(axis=0), y - y.mean(axis=0)
    vx, vy = np.einsum("ij,ij->j", dx, dx), np.einsum("ij,ij->j", dy, dy)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr: np.ndarray = np.einsum("ij,ij->j", dx, dy) / np.sqrt(vx * vy)
    corr[(vx <= 0) | (vy <= 0)] = np.nan
    return corr


def _pearson_by_group(codes: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation per group code; NaN where a side is constant.

    Two-pass (centred on group means) so a constant group gives exactly zero variance instead
    of the cancellation noise of sum(x^2) - sum(x)^2 / n on millions of rows.
    """
    cnt = np.bincount(codes).astype(np.float64)
    dx = x - (np.bincount(codes, weights=x) / cnt)[codes]
    dy = y - (np.bincount(codes, weights=y) / cnt)[codes]
    vx, vy = np.bincount(codes, weights=dx * dx), np.bincount(codes, weights=dy * dy)
    cov = np.bincount(codes, weights=dx * dy)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr: np.ndarray = cov / np.sqrt(vx * vy)
    corr[(vx <= 0) | (vy <= 0)] = np.nan
    return corr


_PARALLEL_ABOVE = 50_000  # rows from which the second ranking gets a thread of its own
R = tuple[np.ndarray, np.ndarray]


def _pair(first: Callable[[], R], second: Callable[[], R], parallel: bool) -> tuple[R, R]:
    """(first(), second()), the second on another core when `parallel`: numpy's sorts release
    the GIL. Leaving the pool waits for it, so an error in `first` leaves no thread behind."""
    if not parallel:
        return first(), second()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tradeloop-metrics") as pool:
        other = pool.submit(second)
        return first(), other.result()


def spearman_ic(
    timestamps: np.ndarray, prediction: np.ndarray, realized: np.ndarray, *, n_symbols: int
) -> float:
    """The IC as documented above; rows with a NaN prediction or return are ignored.

    `timestamps` is any integer/datetime array identifying the cross-section of each row.
    """
    ok = np.isfinite(prediction) & np.isfinite(realized)
    if not ok.all():
        timestamps, prediction, realized = timestamps[ok], prediction[ok], realized[ok]
    if prediction.size < 2:
        return 0.0
    if n_symbols < MIN_CROSS_SECTION:
        (rp, _), (rr, _) = _pair(
            lambda: _ranks(prediction, None),
            lambda: _ranks(realized, None),
            parallel=prediction.size >= _PARALLEL_ABOVE,
        )
        # Elementwise sums, not `@`: a threaded BLAS dot spins its workers and, on a small
        # busy machine, costs more than the whole rank computation.
        dp, dr = rp - rp.mean(), rr - rr.mean()
        denom = math.sqrt(float(np.sum(dp * dp)) * float(np.sum(dr * dr)))
        return float(np.sum(dp * dr)) / denom if denom > 0 else 0.0
    t = aligned_length(timestamps, n_symbols) if n_symbols <= _MAX_PAIRWISE else None
    if t is not None:
        rp = _column_ranks(prediction.reshape(n_symbols, t))
        rr = _column_ranks(realized.reshape(n_symbols, t))
        corr = _pearson_columns(rp, rr)
    else:
        (rp, codes), (rr, _) = _pair(
            lambda: _ranks(prediction, timestamps),
            lambda: _ranks(realized, timestamps),
            parallel=prediction.size >= _PARALLEL_ABOVE,
        )
        corr = _pearson_by_group(codes, rp, rr)
        corr[np.bincount(codes) < MIN_CROSS_SECTION] = np.nan
    corr = corr[np.isfinite(corr)]
    return float(corr.mean()) if corr.size else 0.0


def position_metrics(
    position: np.ndarray, gross: np.ndarray, delta: np.ndarray
) -> dict[str, float]:
    """Hit rate, turnover, exposure and trade count, pooled over (symbol, bar) rows.

    hit_rate: share of rows holding a position whose gross return was > 0 (the direction was
    right; costs are in the returns, not here). turnover: mean |Δposition| per row, so a flip
    from long to short counts 2. n_trades: rows where the position changed.
    """
    n = position.size
    held = position != 0
    n_held = int(held.sum())
    return {
        "hit_rate": float((gross[held] > 0).sum() / n_held) if n_held else 0.0,
        "turnover": float(delta.mean()) if n else 0.0,
        "exposure": float(n_held / n) if n else 0.0,
        "n_trades": float((delta != 0).sum()),
    }
