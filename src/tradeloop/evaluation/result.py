"""The backtest's result and its equity chart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

# Points drawn in the chart: enough for a sharp PNG, bounded on 10M-bar backtests.
_PLOT_POINTS = 5000


@dataclass(frozen=True)
class BacktestResult:
    """What a backtest produced.

    metrics: portfolio metrics (see `tradeloop.evaluation.metrics`), all floats, plus `costs`
        (sum of per-bar portfolio costs, in return units) and counts (n_bars, n_trades, ...).
    equity: timestamp, net_return, equity; the first row is the start (equity 1.0 at the first
        decision bar), then one row per bar at the timestamp its return is realized.
    per_symbol: the same metrics for each symbol on its own.
    ledger: per (symbol, decision bar): prediction, signal, position, fwd_return, delta
        (|Δposition|), gross_return, cost, net_return, realized_at. For audits and tests.
    """

    metrics: dict[str, float]
    equity: pl.DataFrame
    per_symbol: dict[str, dict[str, float]]
    ledger: pl.DataFrame

    @property
    def start(self) -> Any:
        return self.equity.get_column("timestamp").first()

    @property
    def end(self) -> Any:
        return self.equity.get_column("timestamp").last()

    def to_dict(self, *, equity: bool = True) -> dict[str, Any]:
        """JSON-ready: metrics, per-symbol metrics, window and (optionally) the equity curve."""
        out: dict[str, Any] = {
            "metrics": dict(self.metrics),
            "per_symbol": {s: dict(m) for s, m in self.per_symbol.items()},
            "start": _iso(self.start),
            "end": _iso(self.end),
        }
        if equity:
            out["equity"] = {
                "timestamp": [_iso(t) for t in self.equity.get_column("timestamp").to_list()],
                "equity": self.equity.get_column("equity").to_list(),
            }
        return out


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def plot_equity(result: BacktestResult, path: str | Path, title: str = "Backtest") -> Path:
    """Write a PNG of the equity curve and its drawdown to `path`.

    Uses the Agg canvas directly (not pyplot), so it needs no display, touches no global
    backend state and is safe in servers and threads.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ts = result.equity.get_column("timestamp").to_numpy()
    eq = result.equity.get_column("equity").to_numpy()
    step = max(1, len(eq) // _PLOT_POINTS)
    idx = np.unique(np.r_[np.arange(0, len(eq), step), len(eq) - 1])
    drawdown = 1.0 - eq / np.maximum.accumulate(eq)
    fig = Figure(figsize=(10, 5), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot(ts[idx], eq[idx], lw=1.0, color="tab:blue")
    top.axhline(1.0, color="grey", lw=0.5)
    m = result.metrics
    top.set_title(
        f"{title}: total {m['total_return']:+.1%}, Sharpe {m['sharpe']:.2f}, "
        f"max DD {m['max_drawdown']:.1%}"
    )
    top.set_ylabel("equity")
    bottom.fill_between(ts[idx], -drawdown[idx], 0.0, color="tab:red", alpha=0.5, lw=0)
    bottom.set_ylabel("drawdown")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out
