"""A seeded market simulator: correlated OHLCV with regimes and scheduled regime changes.

Returns follow a per-symbol AR(1) (`signal` is the autocorrelation a model can learn) plus a
drift, with shocks correlated across symbols through one common factor. A later regime changes
drift, volatility, correlation and signal at a known bar, which is the drift the monitoring
and retraining parts must detect. The same spec and seed always give the same bars.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from tradeloop.spec import Regime, SimulatorSpec

BAR_SCHEMA: dict[str, pl.DataType] = {
    "timestamp": pl.Datetime("us", "UTC"),
    "symbol": pl.Utf8(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}


def bar_times(start: datetime, n: int, frequency: timedelta, calendar: str) -> list[datetime]:
    """n bar timestamps from `start`; the 'weekdays' calendar skips Saturdays and Sundays."""
    start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    out: list[datetime] = []
    t = start
    while len(out) < n:
        if calendar != "weekdays" or t.weekday() < 5:
            out.append(t)
        t += frequency
    return out


def _regime_index(regimes: list[Regime], n: int) -> np.ndarray:
    idx = np.zeros(n, dtype=np.int64)
    for i, r in enumerate(regimes):
        idx[r.at :] = i
    return idx


def simulate(
    spec: SimulatorSpec, frequency: timedelta, calendar: str = "continuous"
) -> pl.DataFrame:
    """Bars for every symbol in the bars contract (sorted by symbol, timestamp)."""
    rng = np.random.default_rng(spec.seed)
    n, k = spec.bars, len(spec.symbols)
    reg = _regime_index(spec.regimes, n)
    drift = np.array([r.drift for r in spec.regimes])[reg]
    vol = np.array([r.volatility for r in spec.regimes])[reg]
    corr = np.array([r.correlation for r in spec.regimes])[reg]
    phi = np.array([r.signal for r in spec.regimes])[reg]
    vol_mean = np.array([r.volume for r in spec.regimes])[reg]

    common = rng.standard_normal(n)
    idio = rng.standard_normal((n, k))
    shocks = np.sqrt(corr)[:, None] * common[:, None] + np.sqrt(1.0 - corr)[:, None] * idio
    # AR(1) innovations scaled so the stationary volatility equals `vol`
    innov_scale = vol * np.sqrt(1.0 - phi**2)
    rets = np.empty((n, k))
    prev = np.zeros(k)
    for t in range(n):
        prev = phi[t] * prev + innov_scale[t] * shocks[t]
        rets[t] = prev
    rets += drift[:, None]

    close = spec.start_price * np.exp(np.cumsum(rets, axis=0))
    prev_close = np.vstack([np.full((1, k), spec.start_price), close[:-1]])
    gap = np.exp(rng.normal(0.0, 0.1, (n, k)) * vol[:, None])
    open_ = prev_close * gap
    wick_hi = np.exp(np.abs(rng.normal(0.0, 0.5, (n, k))) * vol[:, None])
    wick_lo = np.exp(-np.abs(rng.normal(0.0, 0.5, (n, k))) * vol[:, None])
    high = np.maximum(open_, close) * wick_hi
    low = np.minimum(open_, close) * wick_lo
    activity = 1.0 + 2.0 * np.abs(rets) / vol[:, None]
    volume = np.round(vol_mean[:, None] * activity * rng.lognormal(0.0, 0.3, (n, k)))

    times = bar_times(spec.start, n, frequency, calendar)
    frames = [
        pl.DataFrame(
            {
                "timestamp": times,
                "symbol": [sym] * n,
                "open": open_[:, j],
                "high": high[:, j],
                "low": low[:, j],
                "close": close[:, j],
                "volume": volume[:, j],
            },
            schema=BAR_SCHEMA,
        )
        for j, sym in enumerate(spec.symbols)
    ]
    return pl.concat(frames).sort("symbol", "timestamp")
