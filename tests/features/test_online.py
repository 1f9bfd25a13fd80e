"""Online features: bar-by-bar parity with batch, refusal of bad bars, snapshots, restarts."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.features.helpers import all_kinds, assert_features_close, make_bars, online_frame
from tradeloop.data.simulator import simulate
from tradeloop.errors import BadInput
from tradeloop.features import OnlineFeatures, compute_features, first_valid
from tradeloop.spec import FeatureSpec, Regime, SimulatorSpec, _default_features

FEATURES = all_kinds()
T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _long_bars() -> pl.DataFrame:
    """5,000 bars x 4 symbols through a volatility regime change, with a flat stretch."""
    spec = SimulatorSpec(
        bars=5000,
        seed=3,
        regimes=[Regime(volatility=0.02), Regime(at=2500, volatility=0.001, signal=-0.2)],
    )
    bars = simulate(spec, HOUR)
    flat = (pl.col("symbol") == "BBB") & pl.int_range(pl.len()).over("symbol").is_between(
        3000, 3060
    )
    return bars.with_columns(
        pl.when(flat).then(pl.lit(77.0)).otherwise(pl.col(c)).alias(c)
        for c in ("open", "high", "low", "close", "volume")
    )


def test_online_matches_batch_on_every_bar_of_a_long_series() -> None:
    bars = _long_bars()
    assert_features_close(online_frame(bars, FEATURES), compute_features(bars, FEATURES))


@st.composite
def _paths(draw: st.DrawFn) -> tuple[pl.DataFrame, list[FeatureSpec]]:
    n = draw(st.integers(2, 90))
    k = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    steps = rng.normal(0, draw(st.sampled_from([1e-4, 0.01, 0.3])), (n, k))
    steps[rng.random((n, k)) < draw(st.sampled_from([0.0, 0.3, 0.9]))] = 0.0  # flat bars, ties
    closes = draw(st.sampled_from([1e-3, 1.0, 5e4])) * np.exp(np.cumsum(steps, axis=0))
    volumes = np.round(rng.lognormal(5, 1, (n, k))) * (rng.random((n, k)) < 0.8)
    w = draw(st.integers(2, 12))
    fast = draw(st.integers(1, 5))
    features = [
        FeatureSpec(name="ret", kind="returns", window=draw(st.integers(1, 6))),
        FeatureSpec(name="lret", kind="log_returns", window=w),
        FeatureSpec(name="vol", kind="volatility", window=w),
        FeatureSpec(name="rsi", kind="rsi", window=w),
        FeatureSpec(
            name="macd",
            kind="macd",
            fast=fast,
            slow=fast + draw(st.integers(1, 5)),
            signal=draw(st.integers(1, 4)),
        ),
        FeatureSpec(name="z", kind="zscore", window=w),
        FeatureSpec(name="vz", kind="volume_zscore", window=w),
        FeatureSpec(name="vr", kind="volume_ratio", window=w),
        FeatureSpec(name="rng", kind="range"),
        FeatureSpec(name="rank", kind="cs_rank", of="ret"),
    ]
    return make_bars(closes, volumes, [f"S{j}" for j in range(k)]), features


@settings(max_examples=40, deadline=None)
@given(case=_paths())
def test_online_matches_batch_on_random_paths_with_flat_stretches(
    case: tuple[pl.DataFrame, list[FeatureSpec]],
) -> None:
    bars, features = case
    assert_features_close(online_frame(bars, features), compute_features(bars, features))


def test_online_matches_batch_on_staggered_calendars() -> None:
    rng = np.random.default_rng(9)
    frames = [
        make_bars(
            100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 1)), axis=0)),
            rng.lognormal(8, 1, (300, 1)),
            [s],
            start=k * 220,
        )
        for k, s in enumerate("ABCDEF")
    ]
    bars = pl.concat(frames).sort("symbol", "timestamp")
    assert_features_close(online_frame(bars, FEATURES), compute_features(bars, FEATURES))


def _feed(online: OnlineFeatures, bars: pl.DataFrame) -> None:
    for ts, sym, o, h, lo, c, v in bars.sort("timestamp", "symbol").iter_rows():
        online.update(sym, ts, o, h, lo, c, v)


def test_update_returns_the_per_symbol_features_with_nulls_through_warm_up() -> None:
    online = OnlineFeatures(_default_features())
    per_symbol = [f for f in _default_features() if f.kind != "cs_rank"]
    assert online.symbol_names == [f.name for f in per_symbol]
    for i in range(40):
        row = online.update("A", T0 + i * HOUR, 10.0, 10.5, 9.5, 10.0 + math.sin(i), 100.0 + i)
        assert list(row) == online.symbol_names
        for f in per_symbol:
            assert (row[f.name] is None) == (i < first_valid(f)), (f.name, i)


def test_snapshot_ranks_only_the_symbols_with_a_bar_at_that_timestamp() -> None:
    features = [
        FeatureSpec(name="r", kind="returns", window=1),
        FeatureSpec(name="rk", kind="cs_rank", of="r"),
    ]
    online = OnlineFeatures(features)
    for sym, c in (("A", 10.0), ("B", 10.0), ("C", 10.0)):
        online.update(sym, T0, c, c, c, c, 1.0)
    assert online.snapshot(T0) == {s: {"r": None, "rk": None} for s in "ABC"}
    online.update("A", T0 + HOUR, 11, 11, 11, 11.0, 1.0)
    assert online.snapshot(T0 + HOUR) == {"A": {"r": pytest.approx(0.1), "rk": 0.5}}  # B, C not yet
    online.update("B", T0 + HOUR, 9, 9, 9, 9.0, 1.0)
    snap = online.snapshot(T0 + HOUR)
    assert list(snap) == ["A", "B"] and snap["A"]["rk"] == 1.0 and snap["B"]["rk"] == 0.0
    assert list(snap["A"]) == ["r", "rk"]
    assert online.snapshot(T0) == {"C": {"r": None, "rk": None}}  # C's latest bar is still at T0
    assert online.snapshot(T0 + 5 * HOUR) == {}


def test_update_bars_takes_a_timestamp_at_once_and_returns_its_snapshot() -> None:
    online = OnlineFeatures(_default_features(), symbols=["A", "B"])
    bar = {"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 5.0}
    snap = online.update_bars(T0, {"A": bar, "B": bar})
    assert list(snap) == ["A", "B"] and list(snap["A"]) == online.names
    with pytest.raises(BadInput, match="bad bar"):
        online.update_bars(T0 + HOUR, {"A": bar, "B": {**bar, "close": math.nan}})
    assert online.last_timestamp("A") == T0  # all or nothing: A was not taken either
    with pytest.raises(BadInput, match="needs open"):
        online.update_bars(T0 + HOUR, {"A": {"close": 1.0}})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timestamp": T0}, "not after"),
        ({"timestamp": T0 - HOUR}, "not after"),
        ({"timestamp": (T0 + HOUR).astimezone(timezone(timedelta(hours=1))) - HOUR}, "not after"),
        ({"close": math.nan}, "bad bar"),
        ({"close": math.inf}, "bad bar"),
        ({"close": -1.0}, "bad bar"),
        ({"low": 0.0}, "bad bar"),
        ({"open": "1.0"}, "bad bar"),
        ({"volume": -5.0}, "bad bar"),
        ({"volume": math.nan}, "bad bar"),
        ({"symbol": "ZZZ"}, "unknown symbol"),
        ({"timestamp": "yesterday"}, "timestamp"),
    ],
)
def test_bad_bars_are_refused_and_change_nothing(change: dict[str, object], message: str) -> None:
    online = OnlineFeatures(FEATURES, symbols=["A", "B"])
    for i in range(30):
        online.update("A", T0 - (29 - i) * HOUR, 10.0, 11.0, 9.0, 10.0 + i % 3, 100.0)
    before = json.dumps(online.to_dict())
    bar = {
        "symbol": "A",
        "timestamp": T0 + HOUR,
        "open": 10.0,
        "high": 11.0,
        "low": 9.0,
        "close": 10.0,
        "volume": 1.0,
    }
    with pytest.raises(BadInput, match=message):
        online.update(**(bar | change))  # type: ignore[arg-type]
    assert json.dumps(online.to_dict()) == before


def test_naive_timestamps_are_utc() -> None:
    online = OnlineFeatures(_default_features())
    online.update("A", datetime(2024, 1, 1, 12), 1.0, 1.0, 1.0, 1.0, 1.0)
    assert online.last_timestamp("A") == datetime(2024, 1, 1, 12, tzinfo=UTC)
    with pytest.raises(BadInput, match="not after"):
        online.update("A", datetime(2024, 1, 1, 12, tzinfo=UTC), 1.0, 1.0, 1.0, 1.0, 1.0)


def test_flat_and_extreme_prices_give_none_never_nan_or_inf() -> None:
    online = OnlineFeatures(FEATURES)
    rows = [online.update("A", T0 + i * HOUR, 5.0, 5.0, 5.0, 5.0, 0.0) for i in range(60)]
    rows.append(online.update("A", T0 + 60 * HOUR, 1e-300, 1e-300, 1e-300, 1e-300, 1.0))
    rows.append(online.update("A", T0 + 61 * HOUR, 1e300, 1e300, 1e300, 1e300, 1.0))
    for row in rows:
        assert all(v is None or math.isfinite(v) for v in row.values())
    assert rows[59]["vol_20"] is None and rows[59]["rsi_14"] is None and rows[59]["vr_10"] is None
    assert rows[61]["ret_1"] is None  # 1e300 / 1e-300 overflows


def test_state_survives_a_json_round_trip_and_continues_identically() -> None:
    bars = simulate(SimulatorSpec(bars=400, seed=2), HOUR).sort("timestamp", "symbol")
    first, second = (
        bars.filter(pl.col("timestamp") < bars["timestamp"][800]),
        bars.filter(pl.col("timestamp") >= bars["timestamp"][800]),
    )
    whole = OnlineFeatures(FEATURES)
    _feed(whole, first)
    restored = OnlineFeatures.from_dict(json.loads(json.dumps(whole.to_dict())))
    assert restored.to_dict() == whole.to_dict()
    for ts, sym, o, h, lo, c, v in second.iter_rows():
        assert restored.update(sym, ts, o, h, lo, c, v) == whole.update(sym, ts, o, h, lo, c, v)
    last = second["timestamp"][-1]
    assert restored.snapshot(last) == whole.snapshot(last)
    with pytest.raises(BadInput, match="not after"):
        restored.update("AAA", first["timestamp"][-1], 1.0, 1.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(version=99),
        lambda d: d.pop("features"),
        lambda d: d["states"]["A"]["kernels"].pop(),
        lambda d: d["states"]["A"]["kernels"][0].update(buf="oops"),
        lambda d: d["states"]["A"].update(last="noon"),
        lambda d: d.update(symbols=["B"]),
    ],
)
def test_a_malformed_state_is_refused(damage: object) -> None:
    online = OnlineFeatures(FEATURES, symbols=["A"])
    online.update("A", T0, 1.0, 1.0, 1.0, 1.0, 1.0)
    state = online.to_dict()
    damage(state)  # type: ignore[operator]
    with pytest.raises(BadInput):
        OnlineFeatures.from_dict(state)


def _groups(bars: pl.DataFrame) -> list[tuple[datetime, dict[str, dict[str, float]]]]:
    out: dict[datetime, dict[str, dict[str, float]]] = {}
    for ts, sym, o, h, lo, c, v in bars.sort("timestamp", "symbol").iter_rows():
        out.setdefault(ts, {})[sym] = {"open": o, "high": h, "low": lo, "close": c, "volume": v}
    return list(out.items())


def test_update_many_gives_each_symbols_latest_row_as_update_bars_would() -> None:
    """The batched path (a gateway's `/v1/bars` of many timestamps) against the per-timestamp
    path and the batch features: same latest rows, ranks over each timestamp's own symbols."""
    rng = np.random.default_rng(21)
    frames = [
        make_bars(
            100 * np.exp(np.cumsum(rng.normal(0, 0.01, (260, 1)), axis=0)),
            rng.lognormal(8, 1, (260, 1)),
            [s],
            start=k * 40,
        )
        for k, s in enumerate("ABCDE")
    ]
    bars = pl.concat(frames).sort("symbol", "timestamp")
    want = compute_features(bars, FEATURES)
    groups = _groups(bars)
    one, many = OnlineFeatures(FEATURES), OnlineFeatures(FEATURES)
    seen: dict[str, tuple[datetime, dict[str, float | None]]] = {}
    i, checked = 0, 0
    while i < len(groups):
        chunk = groups[i : i + int(rng.integers(1, 30))]
        i += len(chunk)
        for ts, g in chunk:
            seen.update((s, (ts, row)) for s, row in one.update_bars(ts, g).items())
        got = many.update_many(dict(chunk))
        for sym, (ts, row) in got.items():  # numpy blocks (>= 16 bars) round their own way
            assert (ts, row.keys()) == (seen[sym][0], seen[sym][1].keys())
            for name, value in row.items():
                other = seen[sym][1][name]
                assert (value is None) == (other is None), (sym, ts, name)
                if value is not None:
                    assert value == pytest.approx(other, rel=1e-12, abs=1e-15), (sym, ts, name)
        assert set(got) == {s for s, (ts, _) in seen.items() if ts >= chunk[0][0]}
        for sym, (ts, row) in got.items():
            ref = want.filter((pl.col("symbol") == sym) & (pl.col("timestamp") == ts)).row(
                0, named=True
            )
            for f in FEATURES:
                a, b = row[f.name], ref[f.name]
                assert (a is None) == (b is None), (sym, ts, f.name)
                if a is not None:
                    assert a == pytest.approx(b, rel=1e-9, abs=1e-12), (sym, ts, f.name)
            checked += 1
    assert checked > 50


def test_update_many_is_all_or_none() -> None:
    online = OnlineFeatures(FEATURES)
    bar = {"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 5.0}
    online.update_many({T0: {"A": bar, "B": bar}})
    before = online.to_dict()
    with pytest.raises(BadInput, match="not after"):
        online.update_many(
            {T0 + HOUR: {"A": bar}, T0 + 2 * HOUR: {"A": bar, "B": bar}, T0: {"B": bar}}
        )
    with pytest.raises(BadInput, match="finite"):
        online.update_many({T0 + HOUR: {"A": bar}, T0 + 2 * HOUR: {"B": {**bar, "low": math.nan}}})
    assert online.to_dict() == before
