"""Trading endpoints: bars in, signals out, with the features training used (bar for bar)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import pytest

from tradeloop.data.simulator import simulate
from tradeloop.errors import BadInput
from tradeloop.evaluation.backtest import run_backtest
from tradeloop.evaluation.positions import PositionRule
from tradeloop.features import compute_features
from tradeloop.spec import BacktestSpec, SimulatorSpec, Spec

SPEC = Spec(name="t")
NAMES = SPEC.feature_names
WEIGHTS = [0.5, -0.25, 0.1, 2.0, 0.01, 3.0, -0.2, 0.05, 0.3]


def bars_json(frame: pl.DataFrame) -> list[dict[str, Any]]:
    rows = frame.sort("timestamp", "symbol").to_dicts()
    return [{**r, "timestamp": r["timestamp"].isoformat()} for r in rows]


@pytest.fixture
def bars() -> pl.DataFrame:
    return simulate(
        SimulatorSpec(symbols=["AAA", "BBB", "CCC"], bars=80, seed=3), timedelta(hours=1)
    )


@pytest.fixture
def trading_app(
    make_app: Callable[..., Any],
    models: Any,
    deployer: Callable[..., None],
    onnx_linear: Callable[..., bytes],
) -> Callable[..., Any]:
    models.put("demo", "5", onnx_linear(WEIGHTS, 0.0), NAMES)
    deployer(("champion", "5", "live", 100))
    return lambda **kw: make_app(features=SPEC.features, **kw)


def test_signals_use_the_batch_feature_values(
    trading_app: Callable[..., Any], live: Any, bars: pl.DataFrame
) -> None:
    url = live(trading_app()).url
    payload = bars_json(bars)
    for i in range(0, len(payload), 60):  # several requests, timestamps in order
        r = httpx.post(url + "/v1/bars", json={"bars": payload[i : i + 60]})
        assert r.status_code == 200, r.text
    batch = compute_features(bars, SPEC.features)
    last = batch.filter(pl.col("timestamp") == batch["timestamp"].max())
    for row in last.iter_rows(named=True):
        sig = httpx.get(f"{url}/v1/signals/{row['symbol']}").json()
        assert sig["feature_timestamp"] == row["timestamp"].isoformat()
        assert sig["features"] == pytest.approx({n: row[n] for n in NAMES}, rel=1e-5, abs=1e-6)
        x = np.array([row[n] for n in NAMES], dtype=np.float32)
        expected = 1 / (1 + np.exp(-float(x @ np.array(WEIGHTS, dtype=np.float32))))
        assert sig["prediction"] == pytest.approx(expected, rel=1e-5)
        assert sig["position"] == PositionRule.for_task(BacktestSpec(), "classification").scalar(
            sig["prediction"]
        )
        assert (sig["model"], sig["version"], sig["variant"]) == ("demo", "5", "champion")


def test_a_symbols_rank_counts_the_symbols_that_arrive_after_it(
    trading_app: Callable[..., Any], live: Any, bars: pl.DataFrame
) -> None:
    """One request per bar, as a broker feeds them: the symbol that came first at a timestamp
    is ranked, when asked, among every symbol at that timestamp so far, as the batch ranks."""
    url = live(trading_app()).url
    payload = bars_json(bars)
    for bar in payload[:-3]:
        assert httpx.post(url + "/v1/bars", json={"bars": [bar]}).status_code == 200
    batch = compute_features(bars, SPEC.features)
    last = {
        r["symbol"]: r
        for r in batch.filter(pl.col("timestamp") == batch["timestamp"].max()).iter_rows(named=True)
    }
    first, *rest = payload[-3:]
    httpx.post(url + "/v1/bars", json={"bars": [first]})
    alone = httpx.get(f"{url}/v1/signals/{first['symbol']}").json()["features"]
    assert alone["rank_ret_5"] == 0.5  # the only symbol at its timestamp yet
    for bar in rest:
        httpx.post(url + "/v1/bars", json={"bars": [bar]})
    for sym, row in last.items():
        got = httpx.get(f"{url}/v1/signals/{sym}").json()["features"]
        assert got["rank_ret_5"] == pytest.approx(row["rank_ret_5"]), sym
    assert {round(last[s]["rank_ret_5"], 6) for s in last} == {0.0, 0.5, 1.0}


def test_bars_can_bring_back_each_fed_symbols_signal(
    trading_app: Callable[..., Any], live: Any, bars: pl.DataFrame
) -> None:
    """`?signals=true`: the answer holds each fed symbol's signal, the same as its GET, and
    names the symbols still warming up."""
    url = live(trading_app()).url
    payload = bars_json(bars)
    r = httpx.post(url + "/v1/bars?signals=true", json={"bars": payload[:15]}).json()
    assert r["signals"] == [] and {m["symbol"] for m in r["not_ready"]} == {"AAA", "BBB", "CCC"}
    assert "ret_20" in r["not_ready"][0]["reason"]
    assert "signals" not in httpx.post(url + "/v1/bars", json={"bars": payload[15:-3]}).json()
    last = payload[-3:-1]  # two of the three symbols at the last timestamp
    r = httpx.post(url + "/v1/bars?signals=1", json={"bars": last}).json()
    assert [s["symbol"] for s in r["signals"]] == sorted(b["symbol"] for b in last)
    assert r["not_ready"] == []
    for sig in r["signals"]:
        got = httpx.get(f"{url}/v1/signals/{sig['symbol']}").json()
        assert got == sig
    bad = httpx.post(url + "/v1/bars?signals=maybe", json={"bars": payload[-1:]})
    assert bad.status_code == 400 and "signals must be true or false" in bad.json()["message"]


def test_warm_up_unknown_symbol_and_resent_bars(
    trading_app: Callable[..., Any], live: Any, bars: pl.DataFrame
) -> None:
    url = live(trading_app()).url
    payload = bars_json(bars)
    first = payload[:15]  # five timestamps: not enough for 20-bar windows
    assert httpx.post(url + "/v1/bars", json={"bars": first}).json()["accepted"] == 15
    r = httpx.get(url + "/v1/signals/AAA")
    assert r.status_code == 409 and r.json()["error_code"] == "FEATURES_NOT_READY"
    assert "ret_20" in r.json()["message"]
    r = httpx.get(url + "/v1/signals/ZZZ")
    assert r.status_code == 404 and "no bars for symbol 'ZZZ'" in r.json()["message"]
    again = httpx.post(url + "/v1/bars", json={"bars": payload[:30]}).json()  # a resend overlaps
    assert again["accepted"] == 15 and len(again["skipped"]) == 15
    assert "not after the symbol's last bar" in again["skipped"][0]["reason"]


def test_state_survives_a_restart(
    trading_app: Callable[..., Any], live: Any, bars: pl.DataFrame, tmp_path: Path
) -> None:
    payload = bars_json(bars)
    first = live(trading_app())
    httpx.post(first.url + "/v1/bars", json={"bars": payload[:-3]}).raise_for_status()
    first.stop()  # graceful: the online state is saved
    second = live(trading_app()).url
    assert httpx.get(second + "/v1/signals/AAA").status_code == 200
    r = httpx.post(
        second + "/v1/bars", json={"bars": payload}
    )  # everything but the last bar is old
    assert r.json()["accepted"] == 3
    batch = compute_features(bars, SPEC.features)
    want = batch.filter(pl.col("symbol") == "BBB").row(-1, named=True)
    got = httpx.get(second + "/v1/signals/BBB").json()["features"]
    assert got == pytest.approx({n: want[n] for n in NAMES}, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(
    ("bar", "words"),
    [
        (
            {
                "symbol": "A A",
                "timestamp": "2024-01-01T00:00:00Z",
                "open": 1,
                "high": 1,
                "low": 1,
                "close": 1,
                "volume": 1,
            },
            "symbol",
        ),
        (
            {
                "symbol": "A",
                "timestamp": "yesterday",
                "open": 1,
                "high": 1,
                "low": 1,
                "close": 1,
                "volume": 1,
            },
            "ISO 8601",
        ),
        (
            {
                "symbol": "A",
                "timestamp": 1700000000,
                "open": 1,
                "high": 1,
                "low": 1,
                "close": 1,
                "volume": 1,
            },
            "ISO 8601",
        ),
        (
            {
                "symbol": "A",
                "timestamp": "2024-01-01T00:00:00Z",
                "open": 0,
                "high": 1,
                "low": 1,
                "close": 1,
                "volume": 1,
            },
            "> 0",
        ),
        (
            {
                "symbol": "A",
                "timestamp": "2024-01-01T00:00:00Z",
                "open": 1,
                "high": 1,
                "low": 1,
                "close": "1",
                "volume": 1,
            },
            "number",
        ),
        (
            {
                "symbol": "A",
                "timestamp": "2024-01-01T00:00:00Z",
                "open": 1,
                "high": 1,
                "low": 2,
                "close": 1,
                "volume": 1,
            },
            "above high",
        ),
        (
            {
                "symbol": "A",
                "timestamp": "2024-01-01T00:00:00Z",
                "open": 1,
                "high": 1,
                "low": 1,
                "close": 1,
            },
            "missing fields ['volume']",
        ),
        (
            {
                "symbol": "A",
                "timestamp": "2024-01-01T00:00:00Z",
                "open": 1,
                "high": 1,
                "low": 1,
                "close": 1,
                "volume": 1,
                "vwap": 1,
            },
            "unknown fields ['vwap']",
        ),
    ],
)
def test_bad_bars_are_refused(trading_stack: Any, bar: dict[str, Any], words: str) -> None:
    r = httpx.post(trading_stack.url + "/v1/bars", json={"bars": [bar]})
    assert r.status_code == 400 and words in r.json()["message"], r.text


def test_duplicate_bar_and_empty_batch(trading_stack: Any) -> None:
    bar = {
        "symbol": "A",
        "timestamp": "2024-01-01T00:00:00Z",
        "open": 1,
        "high": 1,
        "low": 1,
        "close": 1,
        "volume": 1,
    }
    r = httpx.post(trading_stack.url + "/v1/bars", json={"bars": [bar, bar]})
    assert r.status_code == 400 and "appears twice" in r.json()["message"]
    assert httpx.post(trading_stack.url + "/v1/bars", json={"bars": []}).status_code == 400
    assert httpx.post(trading_stack.url + "/v1/bars", json={"bar": [bar]}).status_code == 400


def test_a_regression_model_is_not_served_on_probability_thresholds(
    trading_app: Callable[..., Any],
) -> None:
    """The backtest refuses 0.52/0.48 for a regression model (they would short every bar);
    the gateway built for one refuses them too, rather than trade on them."""
    with pytest.raises(BadInput, match="regression model"):
        trading_app(task="regression")


def test_signals_trade_like_the_backtest(
    make_app: Callable[..., Any],
    models: Any,
    deployer: Callable[..., None],
    onnx_linear: Callable[..., bytes],
    live: Any,
    bars: pl.DataFrame,
) -> None:
    """A regression model's signal takes the position the backtest's ledger gives the same
    prediction, with the same spec."""
    backtest = BacktestSpec(long_threshold=0.0005, short_threshold=-0.0005)
    batch = compute_features(bars, SPEC.features)
    last = batch.filter(pl.col("timestamp") == batch["timestamp"].max()).sort("symbol")
    raw = last.select(NAMES).to_numpy() @ np.array(WEIGHTS)
    bias = -float(np.median(raw))  # one symbol long, one flat, one short
    models.put("demo", "6", onnx_linear(WEIGHTS, bias, classifier=False), NAMES)
    deployer(("champion", "6", "live", 100))
    app = make_app(features=SPEC.features, backtest=backtest, task="regression")
    url = live(app).url
    httpx.post(url + "/v1/bars", json={"bars": bars_json(bars)}).raise_for_status()
    positions = []
    for symbol in ("AAA", "BBB", "CCC"):
        sig = httpx.get(f"{url}/v1/signals/{symbol}").json()
        frame = pl.DataFrame(
            {
                "timestamp": [bars["timestamp"][0], bars["timestamp"][1]],
                "symbol": [symbol, symbol],
                "prediction": [sig["prediction"], 0.0],
                "close": [1.0, 1.0],
            }
        )
        ledger = run_backtest(frame, backtest, task="regression").ledger
        assert sig["position"] == ledger["position"][0]
        positions.append(sig["position"])
    assert sorted(positions) == [-1, 0, 1], positions  # every side of the rule was met
