"""`update_latest` + `fresh`: the few rows of a live batch now, every other row's ranks when
read, equal to `update_many`'s eager rows; `CrossSection` ranks as `percentile_ranks` does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.features.helpers import all_kinds
from tradeloop.features import OnlineFeatures
from tradeloop.features.ranks import CrossSection, percentile_ranks

FEATURES = all_kinds()
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from([0.0, -1.5, 2.0, 3.25]), st.floats(-5, 5))))
def test_cross_section_ranks_equal_percentile_ranks(values: list[float | None]) -> None:
    cross = CrossSection({0: values})
    assert [cross.rank(0, v) for v in values] == percentile_ranks(values)


def _bar(price: float) -> dict[str, float]:
    return {"open": price, "high": price * 1.01, "low": price * 0.99, "close": price, "volume": 1.0}


def test_latest_rows_read_through_fresh_equal_update_many_after_every_batch() -> None:
    """Bars of 40 symbols arrive a few at a time, each timestamp split over several batches,
    some batches spanning two timestamps, some symbols skipping a timestamp, flat stretches
    (ties): after each batch, every symbol's row as `fresh` reads it equals `update_many`'s."""
    rng = np.random.default_rng(5)
    symbols = [f"S{i:02d}" for i in range(40)]
    prices = dict.fromkeys(symbols, 100.0)
    stream: list[tuple[datetime, str, dict[str, float]]] = []
    for t in range(60):
        ts = T0 + timedelta(minutes=t)
        for sym in rng.permutation(symbols):
            if rng.random() < 0.1:
                continue  # no bar this minute
            if rng.random() < 0.7:  # flat: equal returns across symbols, so ranks tie
                prices[sym] *= float(np.exp(rng.normal(0, 0.01)))
            stream.append((ts, str(sym), _bar(prices[sym])))
    eager, lazy = OnlineFeatures(FEATURES), OnlineFeatures(FEATURES)
    seen: dict[str, tuple[datetime, dict[str, float | None]]] = {}
    held: dict[str, tuple[datetime, dict[str, float | None]]] = {}
    i = compared = 0
    while i < len(stream):
        size = int(rng.integers(1, 12))
        groups: dict[datetime, dict[str, dict[str, float]]] = {}
        for ts, sym, bar in stream[i : i + size]:
            groups.setdefault(ts, {})[sym] = bar
        i += size
        seen.update(eager.update_many(groups))
        got = lazy.update_latest(groups)
        assert set(got) == {s for g in groups.values() for s in g}  # only the batch's rows
        held.update(got)
        assert held.keys() == seen.keys()
        for sym, (ts, row) in seen.items():
            assert held[sym][0] == ts
            assert lazy.fresh(sym, ts, held[sym][1]) == row, (i, sym)
            compared += 1
    assert compared > 40 * 200


def test_fresh_leaves_a_row_alone_once_its_symbol_moved_on() -> None:
    online = OnlineFeatures(FEATURES)
    rows = online.update_latest({T0: {"A": _bar(10.0)}})
    ts, row = rows["A"]
    online.update_latest({T0 + timedelta(minutes=1): {"A": _bar(11.0)}})
    online.update_latest({T0: {"B": _bar(12.0)}})
    assert online.fresh("A", ts, row) == row
