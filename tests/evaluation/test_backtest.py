"""The backtest: a hand-worked example, next-bar execution, costs, shorts, inputs."""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy.stats import spearmanr

from tradeloop.errors import BadInput
from tradeloop.evaluation.backtest import plot_equity, run_backtest
from tradeloop.spec import BacktestSpec

T0 = datetime(2024, 1, 1, tzinfo=UTC)
TS = pl.Datetime("us", "UTC")


def frame(symbol: str, closes: list[float], preds: list[float | None]) -> pl.DataFrame:
    n = len(closes)
    return pl.DataFrame(
        {
            "timestamp": [T0 + timedelta(days=i) for i in range(n)],
            "symbol": [symbol] * n,
            "prediction": preds,
            "close": closes,
        },
        schema={"timestamp": TS, "symbol": pl.Utf8, "prediction": pl.Float64, "close": pl.Float64},
    )


# The worked example: 2 symbols x 6 daily bars, thresholds 0.6 / 0.4, costs 10 + 5 bps, so each
# unit of |Δposition| costs c = 0.0015. Bar t's prediction sets the position held from
# close[t] to close[t+1]; the last bar (t5) has no next bar and is not traded.
#
# A  close    100   110    99    99  108.9  98.01
#    next r  +.10  -.10     0  +.10   -.10      -
#    pred      .7    .3    .5    .8     .7     .9
#    pos       +1    -1     0    +1     +1      -
#    |Δpos|     1     2     1     1      0      -   (starts flat)
#    gross    .10   .10     0   .10   -.10
#    cost   .0015  .003 .0015 .0015      0
#    net    .0985  .097 -.0015 .0985  -.10
#
# B  close     50    50    55  49.5   49.5  54.45
#    next r     0  +.10  -.10     0   +.10      -
#    pred      .5   .65   .35   .45     .3     .1
#    pos        0    +1    -1     0     -1      -
#    |Δpos|     0     1     2     1      1      -
#    gross      0   .10   .10     0   -.10
#    cost       0 .0015  .003 .0015  .0015
#    net        0 .0985  .097 -.0015 -.1015
#
# Portfolio (mean of A and B), realized at t1..t5:
#    .04925  .09775  .04775  .0485  -.10075
# equity 1 -> 1.04925 -> 1.15181419 -> 1.20681331 -> 1.26534376 -> 1.13786038
# total return 0.13786038; max drawdown: the last bar's fall from the peak, 0.10075.
# mean .0285, sample std .0753363292, Sharpe (252/yr) .0285/.0753363 * sqrt(252) = 6.0053825
# downside dev sqrt(.10075^2 / 5) = .0450567697, Sortino .0285/.0450568 * sqrt(252) = 10.041188
# annualized return 1.13786038^(252/5) - 1 = 670.25002
# hit rate: 7 (symbol, bar)s hold a position (A: t0 t1 t3 t4, B: t1 t2 t4), 5 gross > 0 -> 5/7
# exposure 7/10; turnover: Σ|Δpos| = 10 over 10 (symbol, bar)s -> 1.0; trades: 4 + 4 = 8
# costs: per-bar mean cost .00075 .00225 .00225 .0015 .00075 -> .0075
# A alone: Π(1 + net) - 1 = 0.18959006572786; B alone: 0.08111735604762
EXAMPLE_SPEC = BacktestSpec(
    cost_bps=10, slippage_bps=5, long_threshold=0.6, short_threshold=0.4, periods_per_year=252
)


def example() -> pl.DataFrame:
    a = frame("A", [100, 110, 99, 99, 108.9, 98.01], [0.7, 0.3, 0.5, 0.8, 0.7, 0.9])
    b = frame("B", [50, 50, 55, 49.5, 49.5, 54.45], [0.5, 0.65, 0.35, 0.45, 0.3, 0.1])
    return pl.concat([a, b])


def test_hand_worked_example() -> None:
    res = run_backtest(example(), EXAMPLE_SPEC)
    led = res.ledger
    a, b = led.filter(pl.col("symbol") == "A"), led.filter(pl.col("symbol") == "B")
    assert a["position"].to_list() == [1, -1, 0, 1, 1]
    assert b["position"].to_list() == [0, 1, -1, 0, -1]
    assert a["delta"].to_list() == [1, 2, 1, 1, 0]
    np.testing.assert_allclose(a["net_return"], [0.0985, 0.097, -0.0015, 0.0985, -0.10])
    np.testing.assert_allclose(b["net_return"], [0, 0.0985, 0.097, -0.0015, -0.1015], atol=1e-15)

    port = [0.04925, 0.09775, 0.04775, 0.0485, -0.10075]
    np.testing.assert_allclose(res.equity["net_return"], [0.0, *port])
    np.testing.assert_allclose(
        res.equity["equity"],
        [1, 1.04925, 1.15181419, 1.20681331, 1.26534376, 1.13786038],
        rtol=1e-8,
    )
    assert res.equity["timestamp"].to_list() == [T0 + timedelta(days=i) for i in range(6)]

    m = res.metrics
    assert m["total_return"] == pytest.approx(0.13786038, rel=1e-7)
    assert m["max_drawdown"] == pytest.approx(0.10075)
    assert m["sharpe"] == pytest.approx(6.0053825, rel=1e-7)
    assert m["sortino"] == pytest.approx(10.041188, rel=1e-7)
    assert m["annualized_return"] == pytest.approx(670.25002, rel=1e-7)
    assert m["annualized_volatility"] == pytest.approx(0.0753363292 * np.sqrt(252))
    assert m["hit_rate"] == pytest.approx(5 / 7)
    assert m["exposure"] == pytest.approx(0.7)
    assert m["turnover"] == pytest.approx(1.0)
    assert m["n_trades"] == 8
    assert m["n_bars"] == 5
    assert m["n_symbols"] == 2
    assert m["costs"] == pytest.approx(0.0075)
    assert res.per_symbol["A"]["total_return"] == pytest.approx(0.18959006572786)
    assert res.per_symbol["B"]["total_return"] == pytest.approx(0.08111735604762)
    assert res.per_symbol["A"]["hit_rate"] == pytest.approx(3 / 4)
    assert res.per_symbol["B"]["costs"] == pytest.approx(0.0075)


def random_walk(n: int, seed: int = 1, symbol: str = "X") -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    df = pl.DataFrame(
        {
            "timestamp": pl.datetime_range(
                T0, T0 + timedelta(hours=n - 1), "1h", eager=True, time_zone="UTC"
            ),
            "symbol": [symbol] * n,
            "close": close,
        }
    )
    return df, close


def test_a_signal_never_earns_its_own_bars_return() -> None:
    """Knowing bar t's own return is worthless; knowing bar t+1's is a fortune."""
    n = 20_000
    bars, close = random_walk(n)
    own = np.r_[0.0, close[1:] / close[:-1] - 1]  # return INTO bar t: known at t's close
    nxt = np.r_[close[1:] / close[:-1] - 1, 0.0]  # return OUT of bar t: the future
    spec = BacktestSpec(cost_bps=0, slippage_bps=0, long_threshold=0.5, short_threshold=0.5)
    as_prob = lambda r: np.where(r > 0, 1.0, 0.0)  # noqa: E731

    stale = run_backtest(bars.with_columns(prediction=as_prob(own)), spec)
    seer = run_backtest(bars.with_columns(prediction=as_prob(nxt)), spec)

    sigma = float(np.std(nxt[:-1]))
    per_bar_stale = stale.equity["net_return"][1:].mean()
    assert abs(per_bar_stale) < 4 * sigma / np.sqrt(n)  # noise only: no edge leaks through
    assert 0.47 < stale.metrics["hit_rate"] < 0.53
    assert seer.metrics["hit_rate"] == 1.0
    assert seer.equity["net_return"][1:].mean() == pytest.approx(np.mean(np.abs(nxt[:-1])))
    assert seer.metrics["total_return"] > 1e6 * max(stale.metrics["total_return"], 1e-6)
    # Every position is realized strictly after the bar that decided it.
    led = seer.ledger
    assert (led["realized_at"] > led["timestamp"]).all()


def test_same_bar_execution_cannot_be_requested() -> None:
    df = example()
    for bad in (0, -1, True, 1.0):
        with pytest.raises(BadInput, match="delay"):
            run_backtest(df, EXAMPLE_SPEC, delay=bad)  # type: ignore[arg-type]
    # No other knob moves execution: delay is the only timing parameter.
    params = set(inspect.signature(run_backtest).parameters)
    assert params == {"predictions", "spec", "bars", "task", "frequency", "calendar", "delay"}


def test_delay_two_trades_the_signal_a_bar_later() -> None:
    res = run_backtest(example(), EXAMPLE_SPEC, delay=2)
    a = res.ledger.filter(pl.col("symbol") == "A")
    assert a["signal"].to_list() == [1, -1, 0, 1, 1]
    assert a["position"].to_list() == [0, 1, -1, 0, 1]


def test_costs_reduce_returns_by_exactly_the_charge() -> None:
    bars, close = random_walk(3000, seed=3)
    pred = np.random.default_rng(4).uniform(0.3, 0.7, len(close))
    df = bars.with_columns(prediction=pred)
    free = run_backtest(df, BacktestSpec(cost_bps=0, slippage_bps=0))
    paid = run_backtest(df, BacktestSpec(cost_bps=3, slippage_bps=2))
    delta = paid.ledger["delta"].to_numpy()
    diff = free.ledger["net_return"].to_numpy() - paid.ledger["net_return"].to_numpy()
    np.testing.assert_allclose(diff, 0.0005 * delta, rtol=0, atol=1e-15)
    assert paid.metrics["costs"] == pytest.approx(0.0005 * delta.sum())
    assert free.metrics["costs"] == 0
    assert paid.metrics["total_return"] < free.metrics["total_return"]
    assert paid.metrics["turnover"] == free.metrics["turnover"] == pytest.approx(delta.mean())


def test_short_disabled_gives_no_negative_positions() -> None:
    spec = EXAMPLE_SPEC.model_copy(update={"allow_short": False})
    res = run_backtest(example(), spec)
    assert res.ledger["position"].min() == 0
    a = res.ledger.filter(pl.col("symbol") == "A")
    assert a["position"].to_list() == [1, 0, 0, 1, 1]  # the 0.3 short call is flat


def test_regression_thresholds_are_returns_centred_on_zero() -> None:
    df = example().with_columns((pl.col("prediction") - 0.5) / 10)  # .7 -> +.02, .3 -> -.02
    with pytest.raises(BadInput, match="centred on 0"):
        run_backtest(df, EXAMPLE_SPEC, task="regression")
    spec = EXAMPLE_SPEC.model_copy(update={"long_threshold": 0.01, "short_threshold": -0.01})
    reg = run_backtest(df, spec, task="regression")
    # Same positions, and a monotone map of the predictions keeps their ranks (the IC).
    assert reg.metrics == run_backtest(example(), EXAMPLE_SPEC).metrics
    with pytest.raises(BadInput, match="probabilities"):
        run_backtest(example(), spec)  # return thresholds on a classifier


def test_bars_frame_trades_each_symbol_over_its_prediction_window() -> None:
    full = example()
    bars = full.drop("prediction")
    # All predictions given: identical to the close-in-predictions form.
    same = run_backtest(full.drop("close"), EXAMPLE_SPEC, bars=bars)
    assert same.metrics == run_backtest(full, EXAMPLE_SPEC).metrics
    # A's predictions for t1..t3 only, with t2 missing: A trades t1 and t3 (flat at t2, so
    # both entries pay), earning t1->t2 and t3->t4; B is not in the backtest.
    preds = full.filter(
        (pl.col("symbol") == "A")
        & pl.col("timestamp").is_in([T0 + timedelta(days=d) for d in (1, 3)])
    )
    res = run_backtest(preds.drop("close"), EXAMPLE_SPEC, bars=bars)
    assert res.ledger["position"].to_list() == [-1, 0, 1]
    np.testing.assert_allclose(res.ledger["net_return"], [0.1 - 0.0015, -0.0015, 0.1 - 0.0015])
    assert list(res.per_symbol) == ["A"]
    assert res.equity["timestamp"][-1] == T0 + timedelta(days=4)


def test_bad_inputs_are_refused_clearly() -> None:
    df = example()
    with pytest.raises(BadInput, match="close"):
        run_backtest(df.drop("close"), EXAMPLE_SPEC)
    with pytest.raises(BadInput, match="not both"):
        run_backtest(df, EXAMPLE_SPEC, bars=df.drop("prediction"))
    with pytest.raises(BadInput, match="duplicate"):
        run_backtest(pl.concat([df, df.head(1)]), EXAMPLE_SPEC)
    with pytest.raises(BadInput, match="non-positive"):
        run_backtest(df.with_columns(close=pl.lit(0.0)), EXAMPLE_SPEC)
    with pytest.raises(BadInput, match="no bar"):
        late = df.head(1).with_columns(timestamp=pl.lit(T0 - timedelta(days=9)).cast(TS))
        run_backtest(late.drop("close"), EXAMPLE_SPEC, bars=df.drop("prediction"))
    with pytest.raises(BadInput, match="nothing to backtest"):
        run_backtest(df.head(1), EXAMPLE_SPEC)


def test_order_and_missing_predictions() -> None:
    df = example()
    shuffled = df.sample(fraction=1.0, shuffle=True, seed=5)
    assert run_backtest(shuffled, EXAMPLE_SPEC).metrics == run_backtest(df, EXAMPLE_SPEC).metrics
    holes = df.with_columns(
        prediction=pl.when(pl.col("timestamp") == T0).then(None).otherwise(pl.col("prediction"))
    )
    nan = df.with_columns(
        prediction=pl.when(pl.col("timestamp") == T0).then(float("nan")).otherwise("prediction")
    )
    for d in (holes, nan):
        led = run_backtest(d, EXAMPLE_SPEC).ledger
        assert led.filter(pl.col("timestamp") == T0)["position"].to_list() == [0, 0]


def test_annualization_from_frequency_spec_or_spacing() -> None:
    spec = EXAMPLE_SPEC.model_copy(update={"periods_per_year": None})
    df = example()  # daily bars
    assert run_backtest(df, spec).metrics["periods_per_year"] == 365
    assert run_backtest(df, spec, calendar="weekdays").metrics["periods_per_year"] == 252
    hourly = run_backtest(df, spec, frequency=timedelta(hours=1))
    assert hourly.metrics["periods_per_year"] == 8760
    assert run_backtest(df, EXAMPLE_SPEC).metrics["periods_per_year"] == 252


def test_result_serializes_and_plots(tmp_path) -> None:
    res = run_backtest(example(), EXAMPLE_SPEC)
    doc = json.loads(json.dumps(res.to_dict()))
    assert doc["metrics"]["n_bars"] == 5
    assert doc["start"] == "2024-01-01T00:00:00+00:00"
    assert len(doc["equity"]["equity"]) == 6
    assert "equity" not in res.to_dict(equity=False)
    out = plot_equity(res, tmp_path / "plots" / "equity.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 5000


def three_symbols(n: int = 60) -> pl.DataFrame:
    rng = np.random.default_rng(11)
    parts = []
    for s in ("A", "B", "C"):
        bars, _ = random_walk(n, seed=int(rng.integers(1 << 30)), symbol=s)
        parts.append(bars.with_columns(prediction=np.round(rng.uniform(0.3, 0.7, n), 2)))
    return pl.concat(parts)


@pytest.mark.parametrize("gap", [False, True])
def test_portfolio_is_the_mean_over_the_symbols_present(gap: bool) -> None:
    df = three_symbols()
    if gap:  # B misses bar 10: its bar-9 position earns 9 -> 11; at bar 10 only A, C count
        df = df.filter(
            ~((pl.col("symbol") == "B") & (pl.col("timestamp") == T0 + timedelta(hours=10)))
        )
    spec = BacktestSpec(periods_per_year=8760)
    res = run_backtest(df, spec)
    expected = (
        res.ledger.group_by("realized_at")
        .agg(pl.col("net_return").mean(), pl.len().alias("n"))
        .sort("realized_at")
    )
    assert res.equity["timestamp"][1:].to_list() == expected["realized_at"].to_list()
    np.testing.assert_allclose(res.equity["net_return"][1:], expected["net_return"], atol=1e-15)
    n_at_10 = expected.filter(pl.col("realized_at") == T0 + timedelta(hours=10))["n"].item()
    assert n_at_10 == (2 if gap else 3)
    # The IC is the per-timestamp cross-sectional Spearman, averaged.
    per_ts = [
        spearmanr(g["prediction"], g["fwd_return"]).statistic
        for _, g in res.ledger.group_by("timestamp")
        if g.height >= 3 and g["prediction"].n_unique() > 1
    ]
    assert res.metrics["ic"] == pytest.approx(np.mean(per_ts), abs=1e-12)
