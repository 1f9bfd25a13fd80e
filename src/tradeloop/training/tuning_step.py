"""The tuning step of a training run: Optuna on inner folds, each trial a child run in MLflow.

`_sharpe_scorer` ranks trials with the backtest's position rule and Sharpe.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import Registry
from tradeloop.spec import Spec
from tradeloop.training.adapters import ModelAdapter
from tradeloop.training.dataset import xy
from tradeloop.training.out_of_sample import backtest, predictions
from tradeloop.training.splits import Fold, walk_forward


@dataclass(frozen=True)
class TuningOutcome:
    """The study's summary, and the per-bar after-cost portfolio returns of each trial this run
    completed on the inner folds (T bars x N trials; None with fewer than two such trials)."""

    doc: dict[str, Any]
    trial_returns: np.ndarray | None


def _sharpe_scorer(spec: Spec) -> Callable[[np.ndarray, np.ndarray], float]:
    """After-cost Sharpe of threshold positions on pooled rows, for ranking trials.

    Rows are pooled across symbols, so turnover is unknown: costs are charged on every bar with
    a position, an upper bound that makes the search prefer fewer, surer trades. Positions and
    Sharpe are the backtest's own definitions (`evaluation.positions`, `evaluation.metrics`).
    """
    from tradeloop.evaluation.metrics import sharpe
    from tradeloop.evaluation.positions import PositionRule

    rule = PositionRule.for_task(spec.backtest, spec.model.task)
    cost = (spec.backtest.cost_bps + spec.backtest.slippage_bps) / 1e4

    def score(fwd: np.ndarray, pred: np.ndarray) -> float:
        pos = rule.array(pred)
        return sharpe(pos * fwd - cost * np.abs(pos)) or 0.0

    return score


def tune_in_training(
    spec: Spec,
    project: Project,
    registry: Registry,
    base: ModelAdapter,
    frame: pl.DataFrame,
    folds: list[Fold],
    dataset_hash: str,
    parent_run: str,
    closes: pl.DataFrame,
    on_trial: Callable[[], None] | None = None,
) -> TuningOutcome:
    """Optuna inside the training data only: inner walk-forward folds on the rows before the
    first out-of-sample block, so the reported fold metrics stay untouched by the search."""
    import optuna

    from tradeloop.spec import SplitSpec
    from tradeloop.training.tuning import make_scorer, tune

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X, y, fwd = xy(frame, spec.feature_names)
    outer_train = folds[0].train
    inner_split = SplitSpec(
        scheme="expanding", folds=2, min_train_bars=max(10, spec.training.split.min_train_bars // 2)
    )
    inner = walk_forward(frame[outer_train]["timestamp"], inner_split, spec.labels.horizon)
    score_fn = (
        _sharpe_scorer(spec)
        if spec.training.tuning.metric == "sharpe"
        else make_scorer(spec.training.tuning.metric, spec.model.task)
    )

    fold_preds: dict[int, dict[int, np.ndarray]] = defaultdict(dict)

    def keep_fold(trial: int, k: int, pred: np.ndarray) -> None:
        fold_preds[trial][k] = pred

    def log_trial(record: dict[str, Any]) -> None:
        name = f"trial-{record.get('number')}"
        with registry.start_run(spec.name, name, {}, parent_run_id=parent_run) as run:
            run.log_params(dict(record.get("params") or {}))
            if record.get("value") is not None:
                run.log_metrics({"objective": float(record["value"])})
        if on_trial is not None:
            on_trial()

    res = tune(
        base,
        spec.training,
        X[outer_train],
        y[outer_train],
        inner,
        score_fn,
        storage_url=project.db_url,
        study_name=f"{spec.name}-{dataset_hash[:12]}-{spec.spec_hash()[:8]}",
        on_trial=log_trial,
        y_eval=fwd[outer_train],
        on_fold=keep_fold,
    )
    doc = res.to_dict()
    done = {t["number"] for t in doc["trials"] if t["state"] == "COMPLETE"}
    inner_frame = frame[outer_train]
    series = [
        _trial_returns(spec, inner_frame, inner, preds, closes)
        for number, preds in sorted(fold_preds.items())
        if number in done and len(preds) == len(inner)
    ]
    matrix = np.column_stack(series) if len(series) >= 2 else None
    return TuningOutcome(doc, matrix)


def _trial_returns(
    spec: Spec,
    frame: pl.DataFrame,
    folds: list[Fold],
    preds: dict[int, np.ndarray],
    closes: pl.DataFrame,
) -> np.ndarray:
    """One trial's out-of-fold predictions, backtested as the real one is: per-bar net returns."""
    parts = [predictions(frame, f.test, preds[k]) for k, f in enumerate(folds)]
    equity = backtest(spec, pl.concat(parts), closes).equity
    return equity.get_column("net_return").to_numpy()[1:]
