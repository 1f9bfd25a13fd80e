"""Batch features: layout, the documented math, warm-up, degenerate windows, point-in-time."""

from __future__ import annotations

import math
from datetime import timedelta
from fractions import Fraction

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.features.helpers import all_kinds, make_bars
from tradeloop.data.simulator import simulate
from tradeloop.errors import BadInput
from tradeloop.features import compute_features, first_valid
from tradeloop.features.batch import per_symbol_features, prepare_bars
from tradeloop.spec import FeatureSpec, SimulatorSpec

FEATURES = all_kinds()
BARS = simulate(SimulatorSpec(bars=300, seed=11), timedelta(hours=1))
BASE = compute_features(BARS, FEATURES)


def _one(kind: str, **params: int) -> list[FeatureSpec]:
    return [FeatureSpec(name="f", kind=kind, **params)]  # type: ignore[arg-type]


def _values(
    closes: list[float], features: list[FeatureSpec], volumes: list[float] | None = None
) -> list:
    c = np.array(closes, dtype=float)[:, None]
    v = np.array(volumes if volumes is not None else [1000.0] * len(closes), dtype=float)[:, None]
    return compute_features(make_bars(c, v, ["A"]), features)["f"].to_list()


def test_layout_is_keys_then_one_float_column_per_feature_in_spec_order() -> None:
    assert BASE.columns == ["timestamp", "symbol", *(f.name for f in FEATURES)]
    assert BASE.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert all(BASE.schema[f.name] == pl.Float64 for f in FEATURES)
    assert BASE.select("timestamp", "symbol").equals(BARS.select("timestamp", "symbol"))


def test_warm_up_is_exactly_first_valid_bars_per_symbol() -> None:
    by_name = {f.name: f for f in FEATURES}
    for f in FEATURES:
        nulls = BASE.group_by("symbol").agg(pl.col(f.name).is_null().sum())[f.name].to_list()
        leading = BASE.group_by("symbol").agg(
            pl.col(f.name).head(first_valid(f, by_name)).is_null().all()
        )
        assert nulls == [first_valid(f, by_name)] * 4, f.name
        assert leading[f.name].all(), f.name


def test_returns_log_returns_range_and_volume_ratio_follow_their_formulas() -> None:
    closes = [10.0, 11.0, 12.1, 9.0, 9.9]
    assert _values(closes, _one("returns", window=2)) == pytest.approx(
        [None, None, 0.21, 9 / 11 - 1, 9.9 / 12.1 - 1]
    )
    assert _values(closes, _one("log_returns", window=1))[1:] == pytest.approx(
        list(np.log(np.array(closes[1:]) / closes[:-1]))
    )
    assert _values(closes, [FeatureSpec(name="f", kind="range")]) == pytest.approx([0.02] * 5)
    vols = [1.0, 2.0, 3.0, 0.0, 6.0]
    assert _values(closes, _one("volume_ratio", window=3), vols) == pytest.approx(
        [None, None, 1.5, 0.0, 2.0]
    )
    zero = [1.0, 0.0, 0.0, 0.0, 0.0]  # no volume at all in the window: undefined, not 0/0
    assert _values(closes, _one("volume_ratio", window=3), zero) == [None, None, 0.0, None, None]


def test_windowed_std_kinds_match_numpy_with_ddof_1() -> None:
    rng = np.random.default_rng(3)
    closes = list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60))))
    vols = list(rng.lognormal(10, 0.5, 60))
    c, v, w = np.array(closes), np.array(vols), 7
    r = np.log(c[1:] / c[:-1])
    vol = [np.std(r[t - w : t], ddof=1) for t in range(w, 60)]
    z = [
        (c[t] - c[t - w + 1 : t + 1].mean()) / c[t - w + 1 : t + 1].std(ddof=1)
        for t in range(w - 1, 60)
    ]
    vz = [
        (v[t] - v[t - w + 1 : t + 1].mean()) / v[t - w + 1 : t + 1].std(ddof=1)
        for t in range(w - 1, 60)
    ]
    assert _values(closes, _one("volatility", window=w))[w:] == pytest.approx(vol, rel=1e-12)
    assert _values(closes, _one("zscore", window=w))[w - 1 :] == pytest.approx(z, rel=1e-9)
    assert _values(closes, _one("volume_zscore", window=w), vols)[w - 1 :] == pytest.approx(
        vz, rel=1e-9
    )


def _exact_z(window: np.ndarray) -> float:
    """(last - mean) / std, exact but for the mean, rounded to a float as both paths do."""
    mean = Fraction(math.fsum(window) / len(window))
    dev = [Fraction(x) - mean for x in window]
    return float(dev[-1]) / math.sqrt(float(sum(d * d for d in dev) / (len(dev) - 1)))


def test_zscore_stays_exact_on_a_high_price_that_hardly_moves() -> None:
    # |mean| / std ~ 1e8: Polars' O(1) rolling variance is off by ~1e-6 relative here, so such
    # windows are recomputed exactly (features.windows)
    rng = np.random.default_rng(4)
    closes = 1e4 * np.exp(np.cumsum(rng.normal(0, 1e-8, 200)))
    for w in (2, 5, 20):
        want = [_exact_z(closes[t - w + 1 : t + 1]) for t in range(w - 1, 200)]
        got = _values(list(closes), _one("zscore", window=w))[w - 1 :]
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12), w


def test_rsi_is_wilder_seeded_with_the_mean_of_the_first_window() -> None:
    rng = np.random.default_rng(5)
    closes = list(100 + np.cumsum(rng.normal(0, 1, 80)))
    w = 5
    d = np.diff(closes)
    gain, loss = np.clip(d, 0, None), np.clip(-d, 0, None)
    g, lo = gain[:w].mean(), loss[:w].mean()
    want = [100 * g / (g + lo)]
    for t in range(w, len(d)):
        g = g + (gain[t] - g) / w
        lo = lo + (loss[t] - lo) / w
        want.append(100 * g / (g + lo))
    got = _values(closes, _one("rsi", window=w))
    assert got[:w] == [None] * w
    assert got[w:] == pytest.approx(want, rel=1e-12)


def test_macd_is_the_normalised_histogram_of_pandas_style_emas() -> None:
    rng = np.random.default_rng(8)
    closes = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.02, 120))))
    line = closes.ewm(span=5, adjust=False).mean() - closes.ewm(span=11, adjust=False).mean()
    hist = (line - line.ewm(span=4, adjust=False).mean()) / closes
    got = _values(list(closes), _one("macd", fast=5, slow=11, signal=4))
    assert got[:14] == [None] * 14
    assert got[14:] == pytest.approx(list(hist[14:]), rel=1e-9, abs=1e-15)


def test_constant_prices_give_nulls_never_nan_or_inf() -> None:
    rng = np.random.default_rng(1)
    moving = 100 * np.exp(np.cumsum(rng.normal(0, 0.05, 40)))
    closes = np.concatenate([moving, np.full(40, 123.456)])[:, None]
    volumes = np.concatenate([rng.lognormal(12, 1, 40), np.full(40, 5e5)])[:, None]
    out = compute_features(make_bars(closes, volumes, ["A"]), FEATURES)
    flat = out.tail(10)  # every window (<= 26 + 9 bars) now sees the flat stretch only
    for f in FEATURES:
        col = out[f.name].drop_nulls().to_numpy()
        assert np.isfinite(col).all(), f.name
    for name in ("vol_20", "vol_2", "z_20", "z_2", "vz_20", "rank_vol_20"):
        assert flat[name].is_null().all(), name
    rsi = flat["rsi_14"]  # Wilder averages decay alike: the ratio stays (to rounding)
    assert rsi.is_not_null().all() and rsi.max() - rsi.min() < 1e-9  # type: ignore[operator]
    assert flat["ret_5"].to_list() == [0.0] * 10
    assert flat["vr_10"].to_list() == [1.0] * 10
    assert flat["rank_ret_5"].to_list() == [0.5] * 10


def test_a_price_flat_from_the_start_has_no_rsi_and_no_spread() -> None:
    out = compute_features(
        make_bars(np.full((50, 1), 7.0), np.full((50, 1), 10.0), ["A"]), FEATURES
    )
    for name in ("vol_20", "vol_2", "z_20", "z_2", "vz_20", "rsi_14", "rsi_2"):
        assert out[name].is_null().all(), name
    assert out["macd"].drop_nulls().to_list() == [0.0] * (50 - 34)


def test_overflowing_values_become_null() -> None:
    out = _values([1e-300, 1e300, 1e300], _one("returns", window=1))
    assert out == [None, None, 0.0]


def test_cs_rank_is_average_rank_over_the_symbols_at_each_timestamp() -> None:
    closes = np.array([[1.0, 1.0, 1.0, 1.0], [1.1, 1.2, 1.1, 0.9], [1.1, 1.2, 1.1, 0.9]])
    bars = make_bars(closes, np.ones_like(closes), ["A", "B", "C", "D"])
    feats = [
        FeatureSpec(name="r", kind="returns", window=1),
        FeatureSpec(name="rk", kind="cs_rank", of="r"),
        FeatureSpec(name="r2", kind="returns", window=2),
        FeatureSpec(name="rk2", kind="cs_rank", of="r2"),
    ]
    out = compute_features(bars, feats).sort("timestamp", "symbol")
    assert out["rk"].to_list()[4:8] == pytest.approx([0.5, 1.0, 0.5, 0.0])  # A and C tie
    assert out["rk"].to_list()[8:] == pytest.approx([0.5] * 4)  # all tie at 0.0
    assert out["rk"].to_list()[:4] == [None] * 4  # `of` is null in warm-up
    assert out["rk2"].to_list()[8:] == pytest.approx([0.5, 1.0, 0.5, 0.0])


def _reference_ranks(out: pl.DataFrame, of: str) -> list[float | None]:
    """pandas' groupby rank, as an independent implementation of the cs_rank definition."""
    frame = out.to_pandas()
    by_time = frame.groupby("timestamp")[of]
    n = by_time.transform("count")
    ranks = ((by_time.rank(method="average") - 1) / (n - 1)).where(n > 1, 0.5)
    return [None if pd.isna(x) else float(x) for x in ranks.where(frame[of].notna())]


def test_cs_rank_matches_a_groupby_rank_on_aligned_symbols() -> None:
    for name, of in (("rank_ret_5", "ret_5"), ("rank_vol_20", "vol_20"), ("rank_range", "range")):
        assert BASE[name].to_list() == _reference_ranks(BASE, of)


def test_cs_rank_counts_only_the_symbols_present_on_staggered_calendars() -> None:
    rng = np.random.default_rng(2)
    # six symbols whose calendars overlap pairwise: lone and paired timestamps (and sparse
    # enough for the per-timestamp fallback rather than the timestamps x symbols matrix)
    frames = [
        make_bars(
            100 * np.exp(np.cumsum(rng.normal(0, 0.01, (400, 1)), axis=0)),
            np.ones((400, 1)),
            [s],
            start=k * 300,
        )
        for k, s in enumerate(["A", "B", "C", "D", "E", "F"])
    ]
    bars = pl.concat(frames).sort("symbol", "timestamp")
    feats = [
        FeatureSpec(name="r", kind="returns", window=1),
        FeatureSpec(name="rk", kind="cs_rank", of="r"),
    ]
    out = compute_features(bars, feats)
    assert out["rk"].to_list() == _reference_ranks(out, "r")
    assert {0.0, 0.5, 1.0} <= set(out["rk"].to_list())


def test_partitioned_and_window_strategies_give_the_same_bits() -> None:
    frame = prepare_bars(BARS, ["close", "high", "low", "volume"])
    per_symbol = [f for f in FEATURES if f.kind != "cs_rank"]
    by_partition = per_symbol_features(frame, per_symbol, partitioned=True)
    assert by_partition.equals(per_symbol_features(frame, per_symbol, partitioned=False))


def test_no_bars_give_an_empty_frame_with_the_columns() -> None:
    out = compute_features(BARS.clear(), FEATURES)
    assert out.height == 0 and out.columns == BASE.columns and out.schema == BASE.schema


def test_unsorted_input_gives_the_sorted_result() -> None:
    shuffled = BARS.sample(fraction=1.0, shuffle=True, seed=4)
    assert compute_features(shuffled, FEATURES).equals(BASE)


@pytest.mark.parametrize(
    ("bars", "message"),
    [
        (BARS.drop("volume"), "lack column"),
        (pl.concat([BARS, BARS.head(1)]), "repeat"),
        (BARS.to_pandas(), "polars DataFrame"),
        (BARS.with_columns(pl.lit(None, pl.Utf8).alias("symbol")), "null"),
    ],
)
def test_bad_bars_are_refused(bars: pl.DataFrame, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        compute_features(bars, FEATURES)


@pytest.mark.parametrize(
    ("features", "message"),
    [
        ([FeatureSpec(name="a", kind="range"), FeatureSpec(name="a", kind="range")], "duplicate"),
        ([FeatureSpec(name="r", kind="cs_rank", of="nope")], "must name another"),
        ([FeatureSpec(name="r", kind="cs_rank", of="r")], "must name another"),
        (
            [
                FeatureSpec(name="a", kind="range"),
                FeatureSpec(name="r", kind="cs_rank", of="a"),
                FeatureSpec(name="rr", kind="cs_rank", of="r"),
            ],
            "rank a rank",
        ),
        # the spec refuses these at load time; a FeatureSpec built around validation is still caught
        ([FeatureSpec.model_construct(name="v", kind="volatility", window=1)], "window >= 2"),
        ([FeatureSpec.model_construct(name="symbol", kind="range")], "reserved"),
        ([], "no features"),
    ],
)
def test_bad_feature_lists_are_refused(features: list[FeatureSpec], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        compute_features(BARS, features)


def _perturb_after(bars: pl.DataFrame, cut: object, seed: int) -> pl.DataFrame:
    """Every bar after `cut`, every symbol: new random prices and volumes (some flat)."""
    rng = np.random.default_rng(seed)
    after = pl.col("timestamp") > cut
    n = bars.height
    factor = pl.Series(np.exp(rng.normal(0, 0.2, n)) * (rng.random(n) < 0.9))
    factor = factor.set(factor == 0, 1.0)  # a tenth keep their value: flat stretches, ties
    return bars.with_columns(
        *(
            pl.when(after).then(pl.col(c) * factor).otherwise(pl.col(c)).alias(c)
            for c in ("open", "high", "low", "close")
        ),
        pl.when(after)
        .then(pl.Series(rng.lognormal(13, 1, n)))
        .otherwise(pl.col("volume"))
        .alias("volume"),
    )


@settings(max_examples=25, deadline=None)
@given(cut_index=st.integers(0, 299), seed=st.integers(0, 2**32 - 1))
def test_no_feature_at_or_before_t_depends_on_any_later_bar(cut_index: int, seed: int) -> None:
    cut = BARS["timestamp"].unique().sort()[cut_index]
    changed = compute_features(_perturb_after(BARS, cut, seed), FEATURES)
    early = pl.col("timestamp") <= cut
    assert changed.filter(early).equals(BASE.filter(early))
    if cut_index < 299:  # and the perturbation did reach the features after t
        assert not changed.filter(~early).equals(BASE.filter(~early))
