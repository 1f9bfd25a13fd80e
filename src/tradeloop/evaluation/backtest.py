"""A vectorized, cost-aware backtest of model predictions.

Timing (the one rule that makes a backtest honest): the prediction for bar t is made from
information up to bar t's close, so the position it sets is entered at that close and earns
the NEXT bar's return, close[t+1] / close[t] - 1. A signal never earns its own bar's return:
`delay` (bars between the signal and the return it earns) must be >= 1, so same-bar execution
cannot be asked for. `delay=2` models a signal that can only be traded a bar later.

Positions: `tradeloop.evaluation.positions.PositionRule`, the rule serving and live grading
use too (+1 above long_threshold, -1 below short_threshold if `allow_short`, else 0; a
missing prediction is flat). For a regression model, probability-like thresholds such as the
default 0.52/0.48 are refused, as they would short every bar.

Costs: (cost_bps + slippage_bps) / 1e4 * |Δposition|, charged on the bar whose return the new
position earns; every symbol starts flat, and a position still open at the end is not closed.

Portfolio: equal weight, rebalanced each bar: the portfolio return at a timestamp is the mean
of the net returns of the symbols with a return realized then.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

import numpy as np
import polars as pl

from tradeloop.errors import BadInput
from tradeloop.evaluation.metrics import (
    Calendar,
    aligned_length,
    periods_per_year,
    position_metrics,
    return_metrics,
    spearman_ic,
)
from tradeloop.evaluation.positions import PositionRule, Task, signal_thresholds
from tradeloop.evaluation.result import BacktestResult, plot_equity
from tradeloop.spec import BacktestSpec

_IC_THREAD_ABOVE = 50_000  # ledger rows from which the IC runs beside the other metrics

__all__ = ["BacktestResult", "Task", "plot_equity", "run_backtest", "signal_thresholds"]


def _require(frame: pl.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BadInput(f"{what} lacks column(s) {missing}; it has {frame.columns}")


def _grid(predictions: pl.DataFrame, bars: pl.DataFrame | None) -> pl.DataFrame:
    """timestamp, symbol, prediction, close: one row per bar, sorted by (symbol, timestamp)."""
    _require(predictions, ("timestamp", "symbol", "prediction"), "predictions")
    if bars is None:
        _require(predictions, ("close",), "predictions (no bars given)")
        grid = predictions.select("timestamp", "symbol", "prediction", "close")
    else:
        if "close" in predictions.columns:
            raise BadInput("give the close either in predictions or as bars, not both")
        _require(bars, ("timestamp", "symbol", "close"), "bars")
        pt, bt = predictions.schema["timestamp"], bars.schema["timestamp"]
        if pt != bt:
            raise BadInput(f"timestamp dtypes differ: predictions {pt}, bars {bt}")
        preds = predictions.select("timestamp", "symbol", "prediction")
        unmatched = preds.join(bars, on=["symbol", "timestamp"], how="anti")
        if unmatched.height:
            first = unmatched.row(0, named=True)
            raise BadInput(
                f"{unmatched.height} prediction(s) have no bar, e.g. {first['symbol']} at "
                f"{first['timestamp']}"
            )
        window = preds.group_by("symbol").agg(
            pl.col("timestamp").min().alias("_first"), pl.col("timestamp").max().alias("_last")
        )
        # Keep each symbol's bars from its first prediction through the bar after its last
        # one (the bar that bar's return needs); bars without a prediction in between are flat.
        grid = (
            bars.select("timestamp", "symbol", "close")
            .join(window, on="symbol")
            .sort("symbol", "timestamp")
            .filter(
                pl.col("timestamp").is_between(pl.col("_first"), pl.col("_last"))
                | (
                    (pl.col("timestamp").shift(1) == pl.col("_last"))
                    & (pl.col("symbol").shift(1) == pl.col("symbol"))
                )
            )
            .join(preds, on=["symbol", "timestamp"], how="left")
            .select("timestamp", "symbol", "prediction", "close")
        )
    if grid.height == 0:
        raise BadInput("nothing to backtest: no predictions")
    try:
        grid = grid.with_columns(
            pl.col("prediction").cast(pl.Float64).fill_nan(None), pl.col("close").cast(pl.Float64)
        )
    except pl.exceptions.PolarsError as exc:
        raise BadInput(f"prediction and close must be numeric: {str(exc).splitlines()[0]}") from exc
    return _sorted_unique(grid)


def _sorted_unique(grid: pl.DataFrame) -> pl.DataFrame:
    """The grid sorted by (symbol, timestamp), refusing duplicate bars and bad closes."""
    sym, ts, close = pl.col("symbol"), pl.col("timestamp"), pl.col("close")
    checks = (
        ((sym > sym.shift(1)) | ((sym == sym.shift(1)) & (ts > ts.shift(1))))
        .slice(1)
        .all()
        .alias("ordered"),
        (close.is_null() | (close <= 0)).sum().alias("bad"),
    )
    ordered, bad = grid.select(*checks).row(0)
    if bad:
        raise BadInput(f"{bad} bar(s) have a missing or non-positive close")
    if not ordered:  # sort only when needed: checking is far cheaper than sorting
        grid = grid.sort("symbol", "timestamp")
        if not grid.select(checks[0]).item():
            raise BadInput("duplicate (symbol, timestamp) rows, or null timestamps/symbols")
    return grid


def _ledger(grid: pl.DataFrame, rule: PositionRule, cost: float, delay: int) -> pl.DataFrame:
    """Per (symbol, bar): signal, held position, next-bar return, cost and net return."""
    sym, pos = pl.col("symbol"), pl.col("position")
    last = (sym != sym.shift(-1)).fill_null(True)
    signal = rule.expr(pl.col("prediction"))
    held = pl.col("signal")
    if delay > 1:
        held = held.shift(delay - 1).over("symbol").fill_null(0.0)
    return (
        grid.lazy()
        .with_columns(
            signal.alias("signal"),
            pl.when(last)
            .then(None)
            .otherwise(pl.col("close").shift(-1) / pl.col("close") - 1.0)
            .alias("fwd_return"),
            pl.when(last).then(None).otherwise(pl.col("timestamp").shift(-1)).alias("realized_at"),
        )
        .with_columns(held.alias("position"))
        # Drop each symbol's last bar (no next bar, nothing to earn); then the position change
        # against the symbol's previous bar, starting flat.
        .filter(pl.col("fwd_return").is_not_null())
        .with_columns(
            (pos - pl.when((sym != sym.shift(1)).fill_null(True)).then(0.0).otherwise(pos.shift(1)))
            .abs()
            .alias("delta")
        )
        .with_columns(
            (pos * pl.col("fwd_return")).alias("gross_return"),
            (pl.col("delta") * cost).alias("cost"),
        )
        .with_columns((pl.col("gross_return") - pl.col("cost")).alias("net_return"))
        .collect()
    )


def _portfolio(ledger: pl.DataFrame, n_symbols: int) -> pl.DataFrame:
    """Equal-weight portfolio per realization timestamp: the mean over the symbols present."""
    cols = ("net_return", "cost", "delta")
    if n_symbols == 1:
        return ledger.select(pl.col("realized_at").alias("timestamp"), *cols)
    realized = ledger.get_column("realized_at")
    t = aligned_length(realized.to_physical().to_numpy(), n_symbols)
    if t is not None:  # one calendar: a (symbols, T) reshape instead of a group-by
        means = {
            c: ledger.get_column(c).to_numpy().reshape(n_symbols, t).mean(axis=0) for c in cols
        }
        return pl.DataFrame({"timestamp": realized.slice(0, t), **means})
    return (
        ledger.group_by("realized_at")
        .agg(pl.col(c).mean() for c in cols)
        .rename({"realized_at": "timestamp"})
        .sort("timestamp")
    )


def _ic(ledger: pl.DataFrame, n_sym: int) -> float:
    pred = ledger.get_column("prediction").fill_null(np.nan).to_numpy()
    ts = ledger.get_column("timestamp").to_physical().to_numpy()
    return spearman_ic(ts, pred, ledger.get_column("fwd_return").to_numpy(), n_symbols=n_sym)


def _metrics(
    ledger: pl.DataFrame,
    returns: np.ndarray,
    ppy: float,
    n_sym: int,
    ic: Future[float] | None = None,
) -> dict[str, float]:
    """The metrics of a ledger; `ic`, if given, is the IC already being computed."""
    np_col = {c: ledger.get_column(c).to_numpy() for c in ("position", "gross_return", "delta")}
    out = return_metrics(returns, ppy)
    out |= position_metrics(np_col["position"], np_col["gross_return"], np_col["delta"])
    out["ic"] = ic.result() if ic is not None else _ic(ledger, n_sym)
    out["n_bars"] = float(returns.size)
    out["n_symbols"] = float(n_sym)
    out["periods_per_year"] = float(ppy)
    return out


def run_backtest(
    predictions: pl.DataFrame,
    spec: BacktestSpec,
    *,
    bars: pl.DataFrame | None = None,
    task: Task = "classification",
    frequency: timedelta | None = None,
    calendar: Calendar = "continuous",
    delay: int = 1,
) -> BacktestResult:
    """Backtest `predictions` (timestamp, symbol, prediction) with costs, per symbol and as an
    equal-weight portfolio.

    Closes come from a `close` column in `predictions` (then each row is a bar) or from `bars`
    (timestamp, symbol, close; each symbol is traded from its first to its last prediction,
    flat on bars without one). Annualization: `spec.periods_per_year`, else from `frequency`
    and `calendar` (see `periods_per_year`), else from the median bar spacing.

    From a pipeline spec: `run_backtest(preds, spec.backtest, bars=bars, task=spec.model.task,
    frequency=spec.data.frequency, calendar=spec.data.calendar)`. Raises BadInput for
    anything wrong with the inputs (missing columns, duplicate bars, predictions without a
    bar, thresholds that do not fit the task, delay < 1).
    """
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 1:
        raise BadInput(
            f"delay must be an integer >= 1 (a signal trades after its bar), got {delay!r}"
        )
    if frequency is not None and frequency <= timedelta(0):
        raise BadInput(f"frequency must be positive, got {frequency}")
    rule = PositionRule.for_task(spec, task)
    grid = _grid(predictions, bars)
    cost = (spec.cost_bps + spec.slippage_bps) / 1e4
    ledger = _ledger(grid, rule, cost, delay)
    if ledger.height == 0:
        raise BadInput("nothing to backtest: every symbol has a single bar (no next-bar return)")
    symbols = ledger.get_column("symbol").unique(maintain_order=True).to_list()
    ppy = spec.periods_per_year or periods_per_year(frequency or _median_spacing(ledger), calendar)
    # The IC's two rankings are most of the work: they sort on another core meanwhile.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tradeloop-metrics") as pool:
        ic = pool.submit(_ic, ledger, len(symbols)) if ledger.height >= _IC_THREAD_ABOVE else None
        result = _summarize(ledger, symbols, ppy, ic)
    return result


def _summarize(
    ledger: pl.DataFrame, symbols: list[object], ppy: float, ic: Future[float] | None
) -> BacktestResult:
    port = _portfolio(ledger, len(symbols))
    returns = port.get_column("net_return").to_numpy()
    metrics = _metrics(ledger, returns, ppy, len(symbols), ic)
    # Portfolio costs and turnover: per bar, the equal-weight mean over the symbols present.
    metrics["costs"] = float(port.get_column("cost").sum())
    turnover = port.get_column("delta").mean()
    metrics["turnover"] = float(turnover) if isinstance(turnover, int | float) else 0.0
    per_symbol: dict[str, dict[str, float]] = {}
    if len(symbols) == 1:  # the portfolio is the symbol: don't compute it twice
        per_symbol[str(symbols[0])] = dict(metrics)
    else:
        parts = ledger.partition_by("symbol", as_dict=True, maintain_order=True)
        for (name,), part in parts.items():
            r = part.get_column("net_return").to_numpy()
            per_symbol[str(name)] = _metrics(part, r, ppy, 1) | {
                "costs": float(part.get_column("cost").sum())
            }
    start = ledger.get_column("timestamp").min()
    equity = pl.concat(
        [
            pl.DataFrame({"timestamp": [start], "net_return": [0.0]}).cast(
                {"timestamp": ledger.schema["timestamp"]}
            ),
            port.select("timestamp", "net_return"),
        ]
    ).with_columns((1.0 + pl.col("net_return")).cum_prod().alias("equity"))
    return BacktestResult(metrics=metrics, equity=equity, per_symbol=per_symbol, ledger=ledger)


def _median_spacing(ledger: pl.DataFrame) -> timedelta:
    spacing = ledger.select((pl.col("realized_at") - pl.col("timestamp")).median()).item()
    if not isinstance(spacing, timedelta) or spacing <= timedelta(0):
        raise BadInput("cannot infer the bar frequency from the timestamps; pass frequency")
    return spacing
