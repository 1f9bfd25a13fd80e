from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from tradeloop.data.simulator import simulate
from tradeloop.spec import Regime, SimulatorSpec


def test_same_seed_same_bars_other_seed_other_bars() -> None:
    s = SimulatorSpec(bars=500)
    assert simulate(s, timedelta(hours=1)).equals(simulate(s, timedelta(hours=1)))
    other = simulate(SimulatorSpec(bars=500, seed=8), timedelta(hours=1))
    assert not other.equals(simulate(s, timedelta(hours=1)))


def test_regime_change_shows_in_volatility_and_correlation() -> None:
    s = SimulatorSpec(
        symbols=["A", "B", "C"],
        bars=4000,
        regimes=[
            Regime(at=0, volatility=0.01, correlation=0.1),
            Regime(at=2000, volatility=0.03, correlation=0.8),
        ],
    )
    bars = simulate(s, timedelta(hours=1))
    r = (
        bars.with_columns(r=pl.col("close").log().diff().over("symbol"))
        .pivot("symbol", index="timestamp", values="r")
        .drop("timestamp")
        .to_numpy()[1:]
    )
    before, after = r[:1999], r[2001:]
    assert 0.008 < before.std() < 0.012 and 0.025 < after.std() < 0.035
    c_before = np.corrcoef(before.T)[0, 1]
    c_after = np.corrcoef(after.T)[0, 1]
    assert c_before < 0.25 and c_after > 0.65


def test_signal_is_learnable_momentum() -> None:
    bars = simulate(SimulatorSpec(bars=3000, regimes=[Regime(signal=0.2)]), timedelta(hours=1))
    r = bars.with_columns(r=pl.col("close").log().diff().over("symbol"))
    r = r.with_columns(nxt=pl.col("r").shift(-1).over("symbol")).drop_nulls()
    hit = ((r["r"] > 0) == (r["nxt"] > 0)).mean()
    assert hit > 0.55  # a model has something to find


def test_bars_are_consistent() -> None:
    b = simulate(SimulatorSpec(bars=1000), timedelta(minutes=15))
    assert (b["low"] <= b[["open", "close"]].min_horizontal()).all()
    assert (b["high"] >= b[["open", "close"]].max_horizontal()).all()
    assert (b["volume"] >= 0).all()
    assert b["timestamp"].diff().drop_nulls().filter(
        b["symbol"][1:] == b["symbol"][:-1].to_list()
    ).unique().to_list() == [timedelta(minutes=15)]
