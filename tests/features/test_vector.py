"""The numpy block path of online features: bar for bar equal to the per-bar kernels (and so
to the batch features), leaving the same state, and through `update_many` equal to the batch."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tests.features.helpers import all_kinds, make_bars
from tradeloop.features import OnlineFeatures, compute_features
from tradeloop.features.kernels import make_kernel
from tradeloop.features.many import VECTOR_MIN
from tradeloop.features.vector import run_blocks
from tradeloop.spec import FeatureSpec

FEATURES = all_kinds()
PER_SYMBOL = [f for f in FEATURES if f.kind != "cs_rank"]


def _paths(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """n bars x k symbols x (open, high, low, close, volume), with flat stretches and ties."""
    steps = rng.normal(0, 0.01, (n, k))
    steps[rng.random((n, k)) < 0.2] = 0.0
    close = 100 * np.exp(np.cumsum(steps, axis=0))
    close[40:70, 0] = 77.0  # a flat stretch: windows without spread
    volume = np.round(rng.lognormal(5, 1, (n, k))) * (rng.random((n, k)) < 0.9)
    bars = np.stack([close, close * 1.01, close * 0.99, close, volume], axis=2)
    return bars.transpose(1, 0, 2).copy()  # symbols x bars x fields


@pytest.mark.parametrize("symbols", [6, 20])  # EWMs: a Python loop per symbol, or numpy across
@pytest.mark.parametrize("feature", PER_SYMBOL, ids=lambda f: f.name)
def test_blocks_equal_the_per_bar_kernels_on_every_bar_and_leave_the_same_state(
    feature: FeatureSpec, symbols: int
) -> None:
    rng = np.random.default_rng(5)
    bars = _paths(rng, 400, symbols)
    stepped = [make_kernel(feature) for _ in range(symbols)]
    blocked = [make_kernel(feature) for _ in range(symbols)]
    want = np.array(
        [
            [np.nan if (v := k.step(*b[1:])) is None else v for b in s]
            for k, s in zip(stepped, bars, strict=True)
        ]
    )
    want[~np.isfinite(want)] = np.nan
    # cold kernels first (bar by bar inside run_blocks), then warm blocks of uneven lengths;
    # symbol 0 runs 47 bars behind, so one call mixes warm and still-cold kernels
    got = np.full_like(want, np.nan)
    pos = [0] + [47] * (symbols - 1)
    got[1:, :47] = run_blocks(blocked[1:], bars[1:, :47])
    for size in (3, 17, 1, 40, 100, 1, 191):
        block = np.stack([bars[j, p : p + size] for j, p in enumerate(pos)])
        for j, values in enumerate(run_blocks(blocked, block)):
            got[j, pos[j] : pos[j] + size] = values
        pos = [p + size for p in pos]
    got[0, 353:] = run_blocks(blocked[:1], bars[:1, 353:])[0]
    assert pos == [353] + [400] * (symbols - 1)
    assert np.array_equal(np.isnan(got), np.isnan(want)), feature
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
    if feature.kind in ("rsi", "macd", "returns", "range"):  # the same operations: same bits
        assert np.array_equal(got, want, equal_nan=True)
    for a, b in zip(stepped, blocked, strict=True):
        for name, x in a.dump().items():
            y = b.dump()[name]
            np.testing.assert_allclose(np.array(y, float), np.array(x, float), rtol=1e-12)


def test_update_many_by_blocks_matches_batch_at_every_chunk_end() -> None:
    rng = np.random.default_rng(11)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (700, 8)), axis=0))
    bars = make_bars(closes, rng.lognormal(8, 1, (700, 8)), [f"S{j}" for j in range(8)])
    # two symbols start late: their blocks are cold, then shorter than the others'
    bars = bars.filter(
        ~pl.col("symbol").is_in(["S6", "S7"]) | (pl.col("timestamp") > bars["timestamp"][100])
    )
    want = compute_features(bars, FEATURES)
    groups: dict[object, dict[str, dict[str, float]]] = {}
    for ts, sym, o, h, lo, c, v in bars.sort("timestamp", "symbol").iter_rows():
        groups.setdefault(ts, {})[sym] = {"open": o, "high": h, "low": lo, "close": c, "volume": v}
    stamps = list(groups)
    online, i, checked = OnlineFeatures(FEATURES), 0, 0
    while i < len(stamps):
        size = int(rng.integers(VECTOR_MIN, 4 * VECTOR_MIN))
        chunk = {t: groups[t] for t in stamps[i : i + size]}
        i += size
        for sym, (ts, row) in online.update_many(chunk).items():
            ref = want.filter((pl.col("symbol") == sym) & (pl.col("timestamp") == ts)).row(
                0, named=True
            )
            for f in FEATURES:
                a, b = row[f.name], ref[f.name]
                assert (a is None) == (b is None), (sym, ts, f.name)
                if a is not None:
                    assert a == pytest.approx(b, rel=1e-9, abs=1e-12), (sym, ts, f.name)
            checked += 1
    assert checked >= 8 * 10
