"""tradeloop's vectorized backtest against backtesting.py, on the same precomputed signal.

    .venv/bin/python bench/backtest.py [--bars 200000] [--large-bars 1000000 --symbols 10]

One symbol of 1-minute bars, an AR(1)-return random walk (a little momentum, so the signal
has something to find), and a precomputed P(up) = 0.5 + 25 * (bar t's own return, known at
its close): long above 0.52, short below 0.48, else flat. Costs: 1 bp + 1 bp slippage in
tradeloop, a 2 bp commission in backtesting.py. Both timings include computing the stats.

To trade the same thing, backtesting.py runs with `trade_on_close=True` (an order placed at
bar t fills at bar t's close: tradeloop's convention) and each bar opens at the previous close
(so its default next-open fill would give the same price anyway). What still differs in the
final return: backtesting.py buys whole units with 99.99% of equity (tradeloop: exactly 100%)
and holds a fixed number of units per trade, where tradeloop rebalances to unit exposure every
bar; a short held over several bars compounds differently, by O(r^2) per bar.
"""

from __future__ import annotations

import argparse
import time
import warnings
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import polars as pl
from scipy.signal import lfilter

from tradeloop.evaluation.backtest import run_backtest
from tradeloop.spec import BacktestSpec

SPEC = BacktestSpec(cost_bps=1.0, slippage_bps=1.0, long_threshold=0.52, short_threshold=0.48)
START_US = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
MINUTE_US = 60_000_000
SIZE = 0.9999  # backtesting.py takes a fraction of equity < 1


def market(n: int, seed: int, phi: float = 0.2, vol: float = 0.001) -> tuple[np.ndarray, ...]:
    """Closes of an AR(1)-return random walk, and the momentum signal P(up) for each bar."""
    eps = np.random.default_rng(seed).normal(0.0, vol, n)
    r = lfilter([1.0], [1.0, -phi], eps)  # r[t] = phi * r[t-1] + eps[t]
    r[0] = 0.0
    close = 100.0 * np.exp(np.cumsum(r))
    own = np.r_[0.0, close[1:] / close[:-1] - 1.0]
    return close, np.clip(0.5 + 25.0 * own, 0.0, 1.0)


def tradeloop_frame(close: np.ndarray, prob: np.ndarray, symbol: str = "X") -> pl.DataFrame:
    stamps = START_US + np.arange(close.size, dtype=np.int64) * MINUTE_US
    return pl.DataFrame(
        {
            "timestamp": pl.Series(stamps).cast(pl.Datetime("us", "UTC")),
            "symbol": pl.Series([symbol]).extend_constant(symbol, close.size - 1),
            "prediction": prob,
            "close": close,
        }
    )


def run_tradeloop(
    frame: pl.DataFrame, repeat: int, spec: BacktestSpec = SPEC
) -> tuple[float, float]:
    """Best wall time of `repeat` runs (after one warm-up), and the total return."""
    result = run_backtest(frame, spec)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        result = run_backtest(frame, spec)
        best = min(best, time.perf_counter() - t)
    return best, result.metrics["total_return"]


def run_backtesting_py(
    close: np.ndarray, prob: np.ndarray, spec: BacktestSpec = SPEC
) -> tuple[float, float]:
    """Wall time of one run (backtesting.py is too slow to repeat), and the total return."""
    from backtesting import Backtest, Strategy

    short = -1 if spec.allow_short else 0
    signal = np.where(
        prob > spec.long_threshold, 1, np.where(prob < spec.short_threshold, short, 0)
    )
    signal[0] = 0  # backtesting.py's first next() is at bar 1; bar 0's signal never trades
    opens = np.r_[close[0], close[:-1]]
    data = pd.DataFrame(
        {
            "Open": opens,
            "High": np.maximum(opens, close),
            "Low": np.minimum(opens, close),
            "Close": close,
            "Volume": 1.0,
            "Signal": signal,
        },
        index=pd.date_range("2020-01-01", periods=close.size, freq="1min"),
    )

    class Precomputed(Strategy):
        def init(self) -> None:
            pass

        def next(self) -> None:
            want = self.data.Signal[-1]
            have = 0 if not self.position else (1 if self.position.is_long else -1)
            if want == have:
                return
            if have:
                self.position.close()
            if want > 0:
                self.buy(size=SIZE)
            elif want < 0:
                self.sell(size=SIZE)

    commission = (spec.cost_bps + spec.slippage_bps) / 1e4
    bt = Backtest(data, Precomputed, cash=1e9, commission=commission, trade_on_close=True)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt.run()
    return time.perf_counter() - t, float(stats["Return [%]"]) / 100.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=200_000)
    ap.add_argument("--large-bars", type=int, default=1_000_000)
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--no-long-only-check",
        dest="long_only_check",
        action="store_false",
        help="skip re-running both long-only to show where the gap comes from",
    )
    args = ap.parse_args()

    close, prob = market(args.bars, args.seed)
    tl_s, tl_ret = run_tradeloop(tradeloop_frame(close, prob), args.repeat)
    bp_s, bp_ret = run_backtesting_py(close, prob)
    n = args.bars
    print(f"1 symbol x {n:,} bars, same signal, 2 bp per unit traded")
    print(f"{'engine':<16}{'seconds':>10}{'bars/s':>16}{'total return':>15}")
    print(f"{'tradeloop':<16}{tl_s:>10.4f}{n / tl_s:>16,.0f}{tl_ret:>15.4%}")
    print(f"{'backtesting.py':<16}{bp_s:>10.4f}{n / bp_s:>16,.0f}{bp_ret:>15.4%}")
    print(f"speed-up: {bp_s / tl_s:,.0f}x; total returns differ by {abs(tl_ret - bp_ret):.4%}")
    if args.long_only_check:
        long_only = SPEC.model_copy(update={"allow_short": False})
        _, tl_long = run_tradeloop(tradeloop_frame(close, prob), 0, long_only)
        _, bp_long = run_backtesting_py(close, prob, long_only)
        print(
            f"long-only, where both compound alike: tradeloop {tl_long:.4%}, "
            f"backtesting.py {bp_long:.4%} (differ by {abs(tl_long - bp_long):.4%})"
        )

    if args.large_bars and args.symbols:
        frames = []
        for i in range(args.symbols):
            c, p = market(args.large_bars, args.seed + 1 + i)
            frames.append(tradeloop_frame(c, p, symbol=f"S{i:02d}"))
        big = pl.concat(frames)
        rows = big.height
        big_s, big_ret = run_tradeloop(big, max(1, args.repeat // 2))
        print(
            f"tradeloop, {args.symbols} symbols x {args.large_bars:,} bars = {rows:,} rows: "
            f"{big_s:.2f} s, {rows / big_s:,.0f} symbol-bars/s (portfolio return {big_ret:.2%})"
        )


if __name__ == "__main__":
    main()
