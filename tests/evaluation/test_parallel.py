"""Work split across two threads returns what sequential code would, errors included."""

from __future__ import annotations

import threading

import numpy as np
import polars as pl
import pytest

from tradeloop.evaluation.metrics import spearman_ic
from tradeloop.evaluation.parallel import Background, pair


def test_pair_keeps_order_and_uses_another_thread() -> None:
    names: list[str] = []

    def who(tag: str) -> str:
        names.append(threading.current_thread().name)
        return tag

    assert pair(lambda: who("a"), lambda: who("b")) == ("a", "b")
    assert len(set(names)) == 2
    names.clear()
    assert pair(lambda: who("a"), lambda: who("b"), parallel=False) == ("a", "b")
    assert len(set(names)) == 1


@pytest.mark.parametrize("which", ["first", "second"])
def test_errors_reach_the_caller(which: str) -> None:
    def boom() -> int:
        raise ValueError(which)

    ok = lambda: 1  # noqa: E731
    with pytest.raises(ValueError, match=which):
        pair(boom, ok) if which == "first" else pair(ok, boom)
    with pytest.raises(ValueError, match=which):
        Background(boom).result()


@pytest.mark.parametrize("n_symbols", [1, 5])
def test_ic_computed_in_parallel_matches_a_reference(n_symbols: int) -> None:
    """Big enough that both rankings run on threads; checked against Polars' own ranks."""
    rng = np.random.default_rng(0)
    t = 120_000 // n_symbols
    ts = np.tile(np.arange(t), n_symbols)
    pred = np.round(rng.normal(size=ts.size), 2)  # ties
    real = pred * 0.1 + rng.normal(size=ts.size)
    if n_symbols > 1:  # ragged cross-sections: the group-by ranking path, not the grid
        keep = np.arange(ts.size) % 7 != 3
        ts, pred, real = ts[keep], pred[keep], real[keep]
    frame = pl.DataFrame({"t": ts, "p": pred, "r": real})
    if n_symbols == 1:
        expected = frame.select(pl.corr(pl.col("p").rank(), pl.col("r").rank())).item()
    else:
        per_time = frame.group_by("t").agg(
            pl.corr(pl.col("p").rank(), pl.col("r").rank()), pl.len().alias("n")
        )
        expected = per_time.filter(pl.col("n") >= 3).get_column("p").fill_nan(None).mean()
    assert spearman_ic(ts, pred, real, n_symbols=n_symbols) == pytest.approx(expected, abs=1e-12)
