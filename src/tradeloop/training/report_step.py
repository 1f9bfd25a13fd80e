"""The training run's reports beyond the headline metrics: segments, and what the card needs."""

from __future__ import annotations

from typing import Any

import polars as pl

from tradeloop.evaluation.result import BacktestResult
from tradeloop.evaluation.segments import segment_report
from tradeloop.spec import Spec


def segments_of(spec: Spec, result: BacktestResult, bars: pl.DataFrame) -> dict[str, Any]:
    """The segment report of the out-of-sample backtest; regimes from the whole bar history
    up to each decision bar (point-in-time), so the first test bars have a warm regime."""
    ppy = float(result.metrics["periods_per_year"])
    return segment_report(result.ledger, bars, spec.data.frequency, ppy)
