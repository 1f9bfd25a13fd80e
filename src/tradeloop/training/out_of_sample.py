"""Out-of-sample evidence: each walk-forward fold's predictions and their cost-aware backtest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from tradeloop.evaluation.backtest import BacktestResult, run_backtest
from tradeloop.spec import Spec
from tradeloop.training.adapters import ModelAdapter
from tradeloop.training.dataset import xy
from tradeloop.training.splits import Fold

Step = Callable[[str], None]


def predictions(frame: pl.DataFrame, rows: np.ndarray, pred: np.ndarray) -> pl.DataFrame:
    """(timestamp, symbol, prediction) for `rows` of the training frame."""
    return (
        frame[rows]
        .select("timestamp", "symbol")
        .with_columns(pl.Series("prediction", pred.astype(np.float64)))
    )


def backtest(spec: Spec, preds: pl.DataFrame, closes: pl.DataFrame) -> BacktestResult:
    return run_backtest(
        preds,
        spec.backtest,
        bars=closes,
        task=spec.model.task,
        frequency=spec.data.frequency,
        calendar=spec.data.calendar,
    )


def finite_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The numeric, finite metrics: what MLflow, the gates and the card can hold."""
    return {
        k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and np.isfinite(v)
    }


def fold_results(
    spec: Spec,
    base: ModelAdapter,
    frame: pl.DataFrame,
    folds: list[Fold],
    closes: pl.DataFrame,
    step: Step,
) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    """Fit a fresh model per fold; each fold's description with its metrics, and all the
    out-of-sample predictions together."""
    X, y, _ = xy(frame, spec.feature_names)
    out, parts = [], []
    for f in folds:
        step(f"fold {f.index + 1}/{len(folds)}")
        model = base.with_params().fit(X[f.train], y[f.train])
        preds = predictions(frame, f.test, model.predict(X[f.test]))
        parts.append(preds)
        res = backtest(spec, preds, closes)
        out.append({**f.describe(), "metrics": finite_metrics(res.metrics)})
    return out, pl.concat(parts)
