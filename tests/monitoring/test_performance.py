"""Live performance on delayed outcomes: nothing is graded before its outcome is known."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from tradeloop.clock import SimulatedClock
from tradeloop.errors import BadInput
from tradeloop.monitoring.experiment import analyze
from tradeloop.monitoring.outcomes import (
    join_outcomes,
    outcomes,
    predictions_from_log,
    read_prediction_log,
)
from tradeloop.monitoring.performance import (
    PerformanceConfig,
    live_performance,
    performance_samples,
    scored,
)
from tradeloop.serving.metrics import GatewayMetrics
from tradeloop.serving.predlog import PredictionLog, PredictionRecord, to_table
from tradeloop.spec import AnalysisSpec, Spec

T0 = datetime(2024, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)
TS = pl.Datetime("us", "UTC")


def bars_frame(closes: dict[str, list[float]]) -> pl.DataFrame:
    rows = [(T0 + i * H, sym, c) for sym, cs in closes.items() for i, c in enumerate(cs)]
    return pl.DataFrame(
        rows, schema={"timestamp": TS, "symbol": pl.Utf8, "close": pl.Float64}, orient="row"
    ).sort("symbol", "timestamp")


def preds_frame(rows: list[tuple[int, str, str, str, float]]) -> pl.DataFrame:
    """(bar index, symbol, variant, version, prediction) rows."""
    return pl.DataFrame(
        [(T0 + i * H, s, v, ver, p) for i, s, v, ver, p in rows],
        schema={
            "timestamp": TS,
            "symbol": pl.Utf8,
            "variant": pl.Utf8,
            "model_version": pl.Utf8,
            "prediction": pl.Float64,
        },
        orient="row",
    )


CLOSES = {"AAA": [100.0, 101.0, 99.0, 102.0, 102.0, 103.0]}


def test_outcome_counts_only_once_bar_t_plus_h_is_known() -> None:
    bars = bars_frame(CLOSES)
    preds = preds_frame([(0, "AAA", "champion", "1", 0.6)])
    cfg = PerformanceConfig(horizon=2, window=10)
    t_plus_h = T0 + 2 * H

    before = live_performance(preds, bars, as_of=t_plus_h - timedelta(microseconds=1), config=cfg)
    assert [(m.n, m.pending, m.hit_rate) for m in before] == [(0, 1, None)]

    after = live_performance(preds, bars, as_of=t_plus_h, config=cfg)
    assert [(m.n, m.pending) for m in after] == [(1, 0)]
    assert after[0].pnl_total == pytest.approx(99.0 / 100.0 - 1.0)  # long, price fell
    assert after[0].hit_rate == 0.0

    # Bars handed over beyond as_of do not leak: the full history is given in both calls.
    joined = join_outcomes(preds, bars, horizon=2, as_of=t_plus_h - H)
    assert joined["known"].to_list() == [False]
    assert joined["fwd_return"].to_list() == [None]


def test_known_after_delays_outcomes_of_open_stamped_bars() -> None:
    bars = bars_frame(CLOSES)
    preds = preds_frame([(0, "AAA", "champion", "1", 0.6)])
    cfg = PerformanceConfig(horizon=1, window=10, known_after=H)
    # Bar 1 (stamped T0+1h at its open) closes at T0+2h; bar 0 itself only at T0+1h.
    assert live_performance(preds, bars, as_of=T0 + H, config=cfg)[0].pending == 1
    assert live_performance(preds, bars, as_of=T0 + 2 * H, config=cfg)[0].n == 1
    # A prediction on a bar not yet known at as_of does not exist yet (neither graded nor pending).
    assert live_performance(preds, bars, as_of=T0, config=cfg) == []


def test_predictions_made_after_as_of_are_invisible() -> None:
    bars = bars_frame(CLOSES)
    preds = preds_frame([(0, "AAA", "champion", "1", 0.6)]).with_columns(
        pl.lit(T0 + 3 * H).cast(TS).alias("ts")  # made late, at T0+3h
    )
    cfg = PerformanceConfig(horizon=1, window=10)
    assert live_performance(preds, bars, as_of=T0 + 2 * H, config=cfg) == []
    assert live_performance(preds, bars, as_of=T0 + 3 * H, config=cfg)[0].n == 1


def test_hit_rate_pnl_costs_and_pending_by_hand() -> None:
    bars = bars_frame(CLOSES)
    # returns (h=1): 0->1 +1%, 1->2 -1.98%, 2->3 +3.03%, 3->4 0, 4->5 +0.98%
    preds = preds_frame(
        [
            (0, "AAA", "champion", "1", 0.70),  # long, right
            (1, "AAA", "champion", "1", 0.30),  # short, right (flip: 2 units of cost)
            (2, "AAA", "champion", "1", 0.50),  # flat (1 unit of cost)
            (3, "AAA", "champion", "1", 0.60),  # long, return 0 -> a miss
            (5, "AAA", "champion", "1", 0.90),  # pending: bar 6 does not exist
        ]
    )
    cfg = PerformanceConfig(horizon=1, window=100, cost_bps=10.0)
    (m,) = live_performance(preds, bars, as_of=T0 + 10 * H, config=cfg)
    r = [101 / 100 - 1, 99 / 101 - 1, 102 / 99 - 1, 0.0]
    c = 10 / 1e4
    expected = [r[0] - c, -r[1] - 2 * c, 0.0 - c, r[3] - c]
    assert (m.n, m.pending, m.n_positions) == (4, 1, 3)
    assert m.hit_rate == pytest.approx(2 / 3)
    assert m.pnl_total == pytest.approx(sum(expected))
    assert m.pnl_mean == pytest.approx(np.mean(expected))
    sd = np.std(expected, ddof=1)
    assert m.sharpe == pytest.approx(np.mean(expected) / sd)
    assert m.window_start == T0 and m.window_end == T0 + 3 * H

    samples = performance_samples(preds, bars, as_of=T0 + 10 * H, config=cfg)
    np.testing.assert_allclose(samples["champion"].pnl, expected)
    assert samples["champion"].hit.tolist() == [1.0, 1.0, 0.0]  # the flat one is no bet
    assert (samples["champion"].keys, samples["champion"].pending) == (1, 1)


def test_positions_are_the_backtests() -> None:
    """Live grading takes the backtest's positions, a missing (NaN) prediction flat in both."""
    from tradeloop.evaluation.backtest import run_backtest
    from tradeloop.spec import BacktestSpec

    bars = bars_frame(CLOSES)
    values = [0.70, 0.30, math.nan, 0.50, 0.521]
    preds = preds_frame([(i, "AAA", "champion", "1", p) for i, p in enumerate(values)])
    rows = scored(preds, bars, as_of=T0 + 10 * H, config=PerformanceConfig())
    ledger = run_backtest(
        preds.select("timestamp", "symbol", "prediction"),
        BacktestSpec(),
        bars=bars.select("timestamp", "symbol", "close"),
    ).ledger
    assert rows["position"].to_list() == ledger["position"].to_list() == [1.0, -1.0, 0.0, 0.0, 1.0]


def test_window_keeps_latest_graded_and_groups_by_variant_and_version() -> None:
    rng = np.random.default_rng(3)
    closes = {s: list(100 * np.cumprod(1 + rng.normal(0, 0.01, 60))) for s in ("A", "B")}
    bars = bars_frame(closes)
    rows = [(i, s, "champion", "1", 0.9) for i in range(30) for s in ("A", "B")]
    rows += [(i, s, "champion", "2", 0.1) for i in range(30, 59) for s in ("A", "B")]
    rows += [(i, "A", "challenger", "3", 0.9) for i in range(40, 59)]
    cfg = PerformanceConfig(horizon=1, window=10)
    got = {
        (m.variant, m.model_version): m
        for m in live_performance(preds_frame(rows), bars, as_of=T0 + 100 * H, config=cfg)
    }
    assert sorted(got) == [("challenger", "3"), ("champion", "1"), ("champion", "2")]
    assert got[("champion", "2")].n == 10
    assert got[("champion", "2")].window_start == T0 + 54 * H  # 5 bars x 2 symbols
    assert got[("champion", "1")].window_end == T0 + 29 * H
    assert got[("challenger", "3")].n == 10


def test_ic_is_spearman_and_calibration_error_is_measured() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    moves = rng.normal(0, 0.01, n)
    # Calibrated P(up): the truth is up with probability p, and the move follows it.
    p = rng.uniform(0.05, 0.95, n)
    up = rng.uniform(size=n) < p
    moves = np.where(up, np.abs(moves), -np.abs(moves))
    closes = {"AAA": list(100 * np.cumprod(np.concatenate(([1.0], 1 + moves))))}
    bars = bars_frame(closes)
    rows = [(i, "AAA", "champion", "1", float(p[i])) for i in range(n)]
    cfg = PerformanceConfig(horizon=1, window=n)
    (m,) = live_performance(preds_frame(rows), bars, as_of=T0 + (n + 1) * H, config=cfg)
    assert m.n == n
    assert m.ic == pytest.approx(stats.spearmanr(p, moves).statistic, abs=1e-9)
    assert m.ece is not None and m.ece < 0.04  # calibrated
    assert sum(b.n for b in m.calibration) == n

    # Overconfident by a lot: P pushed to the extremes.
    sharp = np.where(p > 0.5, 0.99, 0.01)
    rows = [(i, "AAA", "champion", "1", float(sharp[i])) for i in range(n)]
    (bad,) = live_performance(preds_frame(rows), bars, as_of=T0 + (n + 1) * H, config=cfg)
    assert bad.ece is not None and bad.ece > 0.15

    reg = PerformanceConfig(
        horizon=1, window=n, task="regression", long_threshold=0.0, short_threshold=0.0
    )
    (r,) = live_performance(preds_frame(rows), bars, as_of=T0 + (n + 1) * H, config=reg)
    assert r.ece is None and r.calibration == ()


def test_samples_feed_the_ab_analysis() -> None:
    rng = np.random.default_rng(11)
    n = 400
    moves = rng.normal(0, 0.01, n)
    closes = {"AAA": list(100 * np.cumprod(np.concatenate(([1.0], 1 + moves))))}
    bars = bars_frame(closes)
    good = np.where(moves > 0, 0.8, 0.2)  # the challenger knows the future: clearly better
    rows = [(i, "AAA", "champion", "1", float(rng.uniform())) for i in range(n)]
    rows += [(i, "AAA", "challenger", "2", float(good[i])) for i in range(n)]
    cfg = PerformanceConfig(horizon=1, window=100)
    s = performance_samples(
        preds_frame(rows),
        bars,
        as_of=T0 + (n + 1) * H,
        config=cfg,
        versions={"champion": "1", "challenger": "2"},
    )
    assert s["champion"].pnl.size == s["challenger"].pnl.size == n
    verdict = analyze(s["champion"].pnl, s["challenger"].pnl, AnalysisSpec(min_samples=50))
    assert verdict.decision == "promote"
    hits = analyze(
        s["champion"].values("hit_rate"),
        s["challenger"].values("hit_rate"),
        AnalysisSpec(metric="hit_rate", min_samples=50),
    )
    assert hits.decision == "promote"
    later = performance_samples(
        preds_frame(rows), bars, as_of=T0 + (n + 1) * H, config=cfg, since=T0 + 300 * H
    )
    assert later["challenger"].pnl.size == 100


def test_config_from_spec_uses_backtest_rules() -> None:
    spec = Spec.model_validate(
        {"name": "demo", "labels": {"horizon": 3}, "monitoring": {"performance": {"window": 250}}}
    )
    cfg = PerformanceConfig.from_spec(spec)
    assert (cfg.horizon, cfg.window, cfg.long_threshold, cfg.short_threshold) == (
        3,
        250,
        0.52,
        0.48,
    )
    assert cfg.cost_bps == 2.0  # cost + slippage
    assert cfg.periods_per_year == pytest.approx(8760)
    with pytest.raises(BadInput):
        PerformanceConfig(short_threshold=0.6, long_threshold=0.4)


def test_bad_inputs_name_the_problem() -> None:
    bars = bars_frame(CLOSES)
    with pytest.raises(BadInput, match="lacks column"):
        live_performance(pl.DataFrame({"x": [1]}), bars, as_of=T0, config=PerformanceConfig())
    with pytest.raises(BadInput, match="horizon"):
        outcomes(bars, horizon=0, as_of=T0)


# ------------------------------------------------------------------------------ the Parquet log


def _record(
    ts: datetime, key: str, version: str, variant: str, p: float, mode: str = "live"
) -> PredictionRecord:
    return PredictionRecord(
        ts,
        f"r-{key}-{ts:%H%M%S}",
        key,
        "/v1/signals/{symbol}",
        "demo",
        version,
        variant,
        mode,
        ("ret_1",),
        np.array([[0.1]], np.float32),
        np.array([p], np.float32),
        0.5,
    )


def test_log_predictions_map_to_the_bar_they_scored(tmp_path: Path) -> None:
    clock = SimulatedClock(T0)
    log = PredictionLog(tmp_path, clock, GatewayMetrics(), flush_interval=60)
    bars = bars_frame({"AAA": [100.0, 101.0, 102.0, 101.0], "BBB": [50.0, 50.5, 51.0, 51.5]})
    # Requests 10 minutes after each bar; AAA is polled twice on bar 0 (counts once).
    for i in range(3):
        t = T0 + i * H + timedelta(minutes=10)
        log.log(_record(t, "AAA", "1", "champion", 0.7))
        log.log(_record(t, "BBB", "1", "champion", 0.3))
        log.log(_record(t, "BBB", "2", "challenger", 0.7, mode="shadow"))
    log.log(_record(T0 + timedelta(minutes=30), "AAA", "1", "champion", 0.2))
    log.log(_record(T0 + timedelta(minutes=5), "req-123", "1", "champion", 0.9))  # no symbol
    log.close()

    raw = read_prediction_log(tmp_path, model="demo")
    assert raw.height == 11
    preds = predictions_from_log(raw, bars)
    assert preds.height == 9  # the repeat poll and the request-id key are gone
    first = preds.filter((pl.col("symbol") == "AAA") & (pl.col("timestamp") == T0))
    assert first["prediction"].to_list() == [pytest.approx(0.7)]

    cfg = PerformanceConfig(horizon=1, window=100)
    got = {
        (m.variant, m.model_version): m
        for m in live_performance(preds, bars, as_of=T0 + 3 * H, config=cfg)
    }
    champ = got[("champion", "1")]
    assert (champ.n, champ.pending) == (6, 0)
    assert champ.hit_rate == pytest.approx(2 / 6)  # AAA up, up, down; BBB short into a rise
    # as_of just before bar 2 exists: the bar-1 predictions are pending, bar-2 ones not yet made
    mid = live_performance(preds, bars, as_of=T0 + 2 * H - timedelta(seconds=1), config=cfg)
    assert [(m.n, m.pending) for m in mid if m.variant == "champion"] == [(2, 2)]

    live = read_prediction_log(tmp_path, modes=["live"], since=T0 + H)
    assert set(live["mode"].to_list()) == {"live"} and live.height == 4
    assert read_prediction_log(tmp_path / "nothing-here").height == 0


def test_log_feature_time_and_symbol_columns_are_used_when_present(tmp_path: Path) -> None:
    """A newer log that records the scored bar (and symbol) is read together with older files."""
    day = tmp_path / "predictions" / "date=2024-01-01"
    day.mkdir(parents=True)
    old = to_table(("ret_1",), [_record(T0 + timedelta(minutes=10), "AAA", "1", "champion", 0.7)])
    pq.write_table(old, day / "part-old.parquet")
    new = to_table(("ret_1",), [_record(T0 + 2 * H, "hdr-key", "1", "champion", 0.3)])
    new = new.append_column("symbol", pa.array(["AAA"])).append_column(
        "feature_time", pa.array([T0 + H], pa.timestamp("us", tz="UTC"))
    )
    pq.write_table(new, day / "part-new.parquet")
    bars = bars_frame({"AAA": [100.0, 101.0, 102.0]})
    preds = predictions_from_log(read_prediction_log(tmp_path), bars)
    assert sorted(zip(preds["timestamp"].to_list(), preds["symbol"].to_list(), strict=True)) == [
        (T0, "AAA"),
        (T0 + H, "AAA"),
    ]


def test_sharpe_annualizes_per_horizon() -> None:
    rng = np.random.default_rng(5)
    n = 200
    closes = {"AAA": list(100 * np.cumprod(np.concatenate(([1.0], 1 + rng.normal(0, 0.01, n)))))}
    rows = [(i, "AAA", "champion", "1", float(rng.uniform())) for i in range(n)]
    base = PerformanceConfig(horizon=1, window=n)
    annual = PerformanceConfig(horizon=1, window=n, periods_per_year=8760)
    (a,) = live_performance(preds_frame(rows), bars_frame(closes), as_of=T0 + 999 * H, config=base)
    (b,) = live_performance(
        preds_frame(rows), bars_frame(closes), as_of=T0 + 999 * H, config=annual
    )
    assert a.sharpe is not None and b.sharpe == pytest.approx(a.sharpe * math.sqrt(8760))
