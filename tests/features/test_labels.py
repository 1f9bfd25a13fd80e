"""Labels: fwd_return uses close[t] and close[t+h] of the same symbol, and nothing else."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.features.helpers import make_bars
from tradeloop.data.simulator import simulate
from tradeloop.errors import BadInput
from tradeloop.features import compute_labels
from tradeloop.spec import LabelSpec, SimulatorSpec

BARS = simulate(SimulatorSpec(bars=200, seed=5), timedelta(hours=1))


def test_forward_return_sign_and_return_labels() -> None:
    closes = np.array([[10.0, 1.0], [11.0, 1.0], [9.9, 2.0], [9.9, 1.0]])
    bars = make_bars(closes, np.ones_like(closes), ["A", "B"])
    sign = compute_labels(bars, LabelSpec(horizon=1, kind="sign"))
    assert sign.columns == ["timestamp", "symbol", "fwd_return", "label"]
    assert sign.schema["fwd_return"] == sign.schema["label"] == pl.Float64
    assert sign["fwd_return"].to_list() == pytest.approx(
        [0.1, -0.1, 0.0, None, 0.0, 1.0, -0.5, None]
    )
    assert sign["label"].to_list() == [1.0, 0.0, 0.0, None, 0.0, 1.0, 0.0, None]  # 0 is not up
    ret = compute_labels(bars, LabelSpec(horizon=2, kind="return"))
    assert ret["label"].to_list() == pytest.approx([-0.01, -0.1, None, None, 1.0, 0.0, None, None])
    assert ret["label"].to_list() == ret["fwd_return"].to_list()


def test_the_last_h_bars_of_every_symbol_have_no_label() -> None:
    out = compute_labels(BARS, LabelSpec(horizon=7))
    tails = out.group_by("symbol").agg(
        pl.col("fwd_return").tail(7).is_null().all(), pl.col("label").null_count()
    )
    assert tails["fwd_return"].all()
    assert tails["label"].to_list() == [7] * 4


def test_bad_bars_are_refused() -> None:
    with pytest.raises(BadInput, match="close"):
        compute_labels(BARS.drop("close"), LabelSpec())


def _with_close(bars: pl.DataFrame, row: int, factor: float) -> pl.DataFrame:
    return bars.with_columns(bars["close"].scatter(row, bars["close"][row] * factor))


@settings(max_examples=30, deadline=None)
@given(t=st.integers(0, 149), h=st.integers(1, 30), sym=st.integers(0, 3), other=st.integers(0, 3))
def test_the_label_at_t_depends_on_close_t_and_close_t_plus_h_only(
    t: int, h: int, sym: int, other: int
) -> None:
    spec = LabelSpec(horizon=h, kind="return")
    base = compute_labels(BARS, spec)
    row = sym * 200 + t  # bars are sorted by symbol, 200 per symbol

    def at_t(bars: pl.DataFrame) -> float:
        return compute_labels(bars, spec)["fwd_return"][row]

    assert at_t(BARS) == pytest.approx(BARS["close"][row + h] / BARS["close"][row] - 1, rel=1e-15)
    assert at_t(_with_close(BARS, row + h, 1.05)) != base["fwd_return"][row]
    assert at_t(_with_close(BARS, row, 1.05)) != base["fwd_return"][row]
    untouched = [
        r
        for r in (row - 1, row + 1, row + h - 1, row + h + 1)
        if r // 200 == sym and r not in (row, row + h)
    ]
    untouched.append(other * 200 + t + h if other != sym else row + h + 1)  # another symbol at t+h
    for r in untouched:
        assert at_t(_with_close(BARS, r, 1.05)) == base["fwd_return"][row], r
