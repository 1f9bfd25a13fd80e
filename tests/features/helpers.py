"""Shared test helpers: drive the online path over a bars frame, compare feature frames."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from tradeloop.data.simulator import BAR_SCHEMA
from tradeloop.features import OnlineFeatures
from tradeloop.spec import FeatureSpec, _default_features


def online_frame(bars: pl.DataFrame, features: Sequence[FeatureSpec]) -> pl.DataFrame:
    """What a gateway would see: bars fed timestamp by timestamp, then one snapshot each."""
    online = OnlineFeatures(features)
    rows: list[dict[str, Any]] = []
    ordered = bars.sort("timestamp", "symbol").iter_rows()
    current = None
    for ts, sym, o, h, lo, c, v in ordered:
        if current is not None and ts != current:
            rows.extend(
                {"timestamp": current, "symbol": s, **r}
                for s, r in online.snapshot(current).items()
            )
        current = ts
        online.update(sym, ts, o, h, lo, c, v)
    if current is not None:
        rows.extend(
            {"timestamp": current, "symbol": s, **r} for s, r in online.snapshot(current).items()
        )
    schema = {"timestamp": BAR_SCHEMA["timestamp"], "symbol": pl.Utf8}
    schema |= {f.name: pl.Float64 for f in features}
    return pl.DataFrame(rows, schema=schema, orient="row").sort("symbol", "timestamp")


def assert_features_close(
    got: pl.DataFrame, want: pl.DataFrame, rtol: float = 1e-9, atol: float = 1e-12
) -> None:
    """Same rows, same nulls, values within |a - b| <= atol + rtol * |b| on every bar."""
    assert got.columns == want.columns
    assert got.select("timestamp", "symbol").equals(want.select("timestamp", "symbol"))
    for name in got.columns[2:]:
        a, b = got[name], want[name]
        assert a.dtype == b.dtype == pl.Float64, name
        assert a.is_null().equals(b.is_null()), f"{name}: nulls differ"
        x, y = a.drop_nulls().to_numpy(), b.drop_nulls().to_numpy()
        assert np.isfinite(x).all() and np.isfinite(y).all(), f"{name}: non-finite values"
        bad = np.abs(x - y) > atol + rtol * np.abs(y)
        assert not bad.any(), f"{name}: {bad.sum()} values differ, worst {np.abs(x - y).max():.3g}"


def make_bars(
    closes: np.ndarray, volumes: np.ndarray, symbols: Sequence[str], start: int = 0
) -> pl.DataFrame:
    """Bars from (bars x symbols) closes and volumes, hourly from 2024-01-01 + `start` hours."""
    n = closes.shape[0]
    first = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=start)
    times = [first + timedelta(hours=i) for i in range(n)]
    frames = []
    for j, sym in enumerate(symbols):
        c = closes[:, j]
        frames.append(
            pl.DataFrame(
                {
                    "timestamp": times,
                    "symbol": [sym] * n,
                    "open": c,
                    "high": c * 1.01,
                    "low": c * 0.99,
                    "close": c,
                    "volume": volumes[:, j],
                }
            )
        )
    return pl.concat(frames).cast(BAR_SCHEMA).sort("symbol", "timestamp")


def all_kinds() -> list[FeatureSpec]:
    """Every kind at least once, the default set included, windows down to their minimum."""
    extra = [
        FeatureSpec(name="lr_5", kind="log_returns", window=5),
        FeatureSpec(name="vol_2", kind="volatility", window=2),
        FeatureSpec(name="rsi_2", kind="rsi", window=2),
        FeatureSpec(name="macd_fast", kind="macd", fast=3, slow=7, signal=4),
        FeatureSpec(name="z_2", kind="zscore", window=2),
        FeatureSpec(name="vr_10", kind="volume_ratio", window=10),
        FeatureSpec(name="range", kind="range"),
        FeatureSpec(name="rank_vol_20", kind="cs_rank", of="vol_20"),
        FeatureSpec(name="rank_range", kind="cs_rank", of="range"),
    ]
    return _default_features() + extra
