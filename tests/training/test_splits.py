from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloop.errors import BadInput
from tradeloop.spec import SplitSpec
from tradeloop.training.splits import Fold, purge_mask, purged_kfold, walk_forward

START = datetime(2024, 1, 1, tzinfo=UTC)


def panel(
    n_bars: int, symbols: tuple[str, ...] = ("AAA", "BBB", "CCC"), gaps: int = 0
) -> pl.DataFrame:
    """A bars-contract frame (sorted by symbol, then time), so rows are not in time order.

    `gaps`: the last symbol misses every `gaps`-th bar, as a thinly traded symbol would.
    """
    rows = []
    for i, sym in enumerate(symbols):
        for b in range(n_bars):
            if gaps and i == len(symbols) - 1 and b % gaps == 1:
                continue
            rows.append((START + timedelta(hours=b), sym, 100.0 + b))
    return pl.DataFrame(
        rows,
        schema={"timestamp": pl.Datetime("us", "UTC"), "symbol": pl.Utf8, "close": pl.Float64},
        orient="row",
    ).sort("symbol", "timestamp")


def bar_of(frame: pl.DataFrame) -> np.ndarray:
    """Each row's bar position: hours since START (the panel is hourly and gap-free in time)."""
    return ((frame["timestamp"] - START).dt.total_hours()).to_numpy()


def assert_no_leak(fold: Fold, bars: np.ndarray, h: int) -> None:
    """No training label window (t, t+h] meets any test sample's span [t', t' + h]."""
    train_t = np.unique(bars[fold.train])
    test_t = np.unique(bars[fold.test])
    assert train_t.size and test_t.size
    assert not set(train_t) & set(test_t)
    # every (train, test) pair, vectorised: overlap iff t + 1 <= t' + h and t + h >= t'
    t = train_t[:, None]
    u = test_t[None, :]
    overlap = (t + 1 <= u + h) & (t + h >= u)
    assert not overlap.any(), f"fold {fold.index}: train bars {train_t[overlap.any(axis=1)]} leak"


def assert_bars_not_split(fold: Fold, bars: np.ndarray) -> None:
    """Every row of a timestamp falls on the same side (or is dropped with its bar)."""
    assert set(bars[fold.train]).isdisjoint(bars[fold.test])
    for side in (fold.train, fold.test):
        chosen = set(bars[side])
        assert np.isin(np.flatnonzero(np.isin(bars, list(chosen))), side).all()


# ------------------------------------------------------------------------------- walk-forward


def test_horizon_5_overlap_exists_without_purge_and_is_removed() -> None:
    frame = panel(200)
    bars = bar_of(frame)
    split = SplitSpec(folds=3, min_train_bars=50, test_bars=30)
    folds = walk_forward(frame, split, horizon=5)
    assert len(folds) == 3
    for fold in folds:
        s, e = fold.test_blocks[0]
        # a naive split trains on everything before s: its last 5 bars' labels reach into the test
        naive = Fold(**{**fold.__dict__, "train": np.flatnonzero(bars < s)})
        with pytest.raises(AssertionError, match="leak"):
            assert_no_leak(naive, bars, 5)
        assert_no_leak(fold, bars, 5)
        assert_bars_not_split(fold, bars)
        # exactly the 5 bars s-5 .. s-1 are purged, nothing more
        assert fold.train_bars[-1] == s - 6
        assert fold.purged == 5
        assert fold.embargoed == 0
        assert set(bars[fold.test]) == set(range(s, e + 1))


def test_test_blocks_are_consecutive_and_end_with_the_history() -> None:
    frame = panel(300, gaps=7)
    folds = walk_forward(frame, SplitSpec(folds=4, min_train_bars=100), horizon=2)
    tb = (300 - 100 - 2) // 4
    blocks = [f.test_blocks[0] for f in folds]
    assert blocks[-1][1] == 299
    assert all(e - s + 1 == tb for s, e in blocks)
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(blocks))
    assert folds[0].train_bars.size >= 100  # min_train_bars holds after the purge


def test_expanding_grows_and_sliding_keeps_its_window() -> None:
    frame = panel(1000, symbols=("AAA", "BBB"))
    exp = walk_forward(frame, SplitSpec(folds=4, min_train_bars=500), horizon=2)
    tb = (1000 - 500 - 2) // 4
    assert [f.train_bars.size for f in exp] == [1000 - 4 * tb - 2 + k * tb for k in range(4)]
    assert all(f.train_bars[0] == 0 for f in exp)
    assert [f.train.size for f in exp] == [2 * f.train_bars.size for f in exp]

    sld = walk_forward(
        frame, SplitSpec(scheme="sliding", folds=4, train_bars=300, min_train_bars=300), horizon=2
    )
    assert [f.train_bars.size for f in sld] == [300] * 4
    for f in sld:
        s = f.test_blocks[0][0]
        assert (f.train_bars[0], f.train_bars[-1]) == (s - 302, s - 3)
    # the sliding default test size leaves room for the window only, not min_train_bars of 500
    assert sld[0].test_blocks[0][1] - sld[0].test_blocks[0][0] + 1 == (1000 - 300 - 2) // 4


def test_walk_forward_ignores_the_embargo_because_it_never_trains_after_a_test_block() -> None:
    frame = panel(300)
    a = walk_forward(frame, SplitSpec(folds=3, min_train_bars=100, embargo=0), horizon=3)
    b = walk_forward(frame, SplitSpec(folds=3, min_train_bars=100, embargo=20), horizon=3)
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(fa.train, fb.train)
        assert fa.train_bars.max() < fa.test_blocks[0][0]


@pytest.mark.parametrize(
    ("n", "split", "h", "message"),
    [
        (
            100,
            SplitSpec(folds=4, min_train_bars=100),
            1,
            "need 105 distinct timestamps, the data has 100",
        ),
        (200, SplitSpec(folds=4, min_train_bars=100, test_bars=30), 1, "need 221"),
        (120, SplitSpec(folds=2, min_train_bars=100), 20, "20-bar purge"),
        (
            500,
            SplitSpec(scheme="sliding", folds=2, train_bars=50, min_train_bars=100),
            1,
            "train_bars \\(50\\) is smaller than split.min_train_bars \\(100\\)",
        ),
    ],
)
def test_too_short_or_inconsistent_is_bad_input(
    n: int, split: SplitSpec, h: int, message: str
) -> None:
    with pytest.raises(BadInput, match=message):
        walk_forward(panel(n, symbols=("AAA",)), split, horizon=h)


def test_bad_timestamps_are_bad_input() -> None:
    with pytest.raises(BadInput, match="'timestamp' column"):
        walk_forward(pl.DataFrame({"t": [1, 2]}), SplitSpec(), horizon=1)
    with pytest.raises(BadInput, match="horizon"):
        walk_forward(np.arange(1000), SplitSpec(), horizon=-1)


def test_describe_is_json_with_utc_times() -> None:
    folds = walk_forward(panel(200), SplitSpec(folds=2, min_train_bars=50), horizon=1)
    d = json.loads(json.dumps([f.describe() for f in folds]))
    assert d[0]["train_start"] == START.isoformat()
    assert d[1]["test_end"] == (START + timedelta(hours=199)).isoformat()
    assert d[0]["test_rows"] == 3 * d[0]["test_bars"]
    assert d[0]["purged_bars"] == 1


# -------------------------------------------------------------------------- purged k-fold


def test_purged_kfold_purges_and_embargoes_both_sides_with_exact_counts() -> None:
    frame = panel(100)
    bars = bar_of(frame)
    h, emb = 3, 4
    plain = purged_kfold(frame, groups=5, horizon=h, embargo=0)
    folds = purged_kfold(frame, groups=5, horizon=h, embargo=emb)
    assert [f.test_blocks for f in folds] == [((20 * k, 20 * k + 19),) for k in range(5)]
    for p, f in zip(plain, folds, strict=True):
        assert_no_leak(f, bars, h)
        assert_bars_not_split(f, bars)
        first, last = f.index == 0, f.index == 4
        # before the block: h purged; after it: h - 1 purged, then the embargo
        assert f.purged == (0 if first else h) + (0 if last else h - 1)
        assert f.embargoed == (0 if last else emb)
        assert p.train_bars.size - f.train_bars.size == f.embargoed
        assert f.train_bars.size == 100 - 20 - f.purged - f.embargoed
        if not last:
            e = f.test_blocks[0][1]
            dropped = set(p.train_bars) - set(f.train_bars)
            assert dropped == set(range(e + h, e + h + emb))  # exactly the bars after the purge
            assert min(b for b in f.train_bars if b > e) == e + h + emb


def test_combinatorial_folds_cover_every_pair_of_groups() -> None:
    frame = panel(60, symbols=("AAA",))
    bars = bar_of(frame)
    folds = purged_kfold(frame, groups=6, horizon=2, embargo=1, test_groups=2)
    assert len(folds) == 15
    for f in folds:
        assert_no_leak(f, bars, 2)
        assert f.test.size == 20
    adjacent = next(f for f in folds if f.test_blocks == ((0, 19),))  # groups 0 and 1 merged
    assert adjacent.purged == 1 and adjacent.embargoed == 1


def test_purge_mask_matches_the_fold() -> None:
    mask = purge_mask(50, [(20, 29)], horizon=3, embargo=2)
    assert np.flatnonzero(~mask).tolist() == list(range(17, 34))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": 3, "test_groups": 3}, "test_groups < groups"),
        ({"groups": 50}, "needs >= 50 timestamps"),
        ({"groups": 2, "horizon": 30}, "no training bars left"),
        ({"groups": 3, "embargo": -1}, "embargo"),
    ],
)
def test_purged_kfold_bad_input(kwargs: dict, message: str) -> None:
    args = {"horizon": 1, **kwargs}
    with pytest.raises(BadInput, match=message):
        purged_kfold(np.arange(40), **args)


# ---------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(20, 400),
    h=st.integers(0, 12),
    folds=st.integers(1, 6),
    min_train=st.integers(10, 120),
    sliding=st.booleans(),
    test_bars=st.one_of(st.none(), st.integers(10, 80)),
    n_symbols=st.integers(1, 3),
)
def test_walk_forward_properties(
    n: int, h: int, folds: int, min_train: int, sliding: bool, test_bars: int | None, n_symbols: int
) -> None:
    split = SplitSpec(
        scheme="sliding" if sliding else "expanding",
        folds=folds,
        test_bars=test_bars,
        train_bars=min_train if sliding else None,
        min_train_bars=min_train,
    )
    frame = panel(n, symbols=tuple("ABC"[:n_symbols]), gaps=5 if n_symbols > 1 else 0)
    bars = bar_of(frame)
    tb = test_bars if test_bars is not None else (n - min_train - h) // folds
    if tb < 1 or min_train + h + folds * tb > n:
        with pytest.raises(BadInput, match="not enough data"):
            walk_forward(frame, split, h)
        return
    result = walk_forward(frame, split, h)
    assert len(result) == folds
    assert result[-1].test_blocks[0][1] == n - 1
    for k, f in enumerate(result):
        ((s, e),) = f.test_blocks
        assert e - s + 1 == tb
        assert_no_leak(f, bars, h)
        assert_bars_not_split(f, bars)
        assert f.train_bars.max() == s - h - 1
        assert f.train_bars.size == (min_train if sliding else s - h) >= min_train
        assert len(set(f.train) | set(f.test)) == f.train.size + f.test.size
        if k:
            assert s == result[k - 1].test_blocks[0][1] + 1


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(10, 200),
    groups=st.integers(2, 6),
    h=st.integers(0, 8),
    emb=st.integers(0, 8),
    test_groups=st.integers(1, 3),
)
def test_purged_kfold_properties(n: int, groups: int, h: int, emb: int, test_groups: int) -> None:
    if test_groups >= groups:
        test_groups = groups - 1
    ts = np.repeat(np.arange(n), 2)  # two symbols per bar
    try:
        folds = purged_kfold(ts, groups, h, emb, test_groups)
    except BadInput as exc:
        assert "no training bars left" in str(exc) or n < groups
        return
    bars = ts
    for f in folds:
        assert_no_leak(f, bars, h)
        test_bars = set(bars[f.test])
        for s, e in f.test_blocks:
            after = [b for b in f.train_bars if b > e]
            if after:
                assert after[0] >= e + h + emb  # purge + embargo after each block
            assert set(range(s, e + 1)) <= test_bars
        expect_dropped = n - len(test_bars) - f.train_bars.size
        assert f.purged + f.embargoed == expect_dropped
