"""The selection step of a training run: deflate the out-of-sample Sharpe by every attempt.

The honest trial count N is this run's tuning trials (the whole study: resumed trials were
tried too; 1 without tuning, the one configuration) plus every earlier finished training run
of the pipeline in MLflow (`registry.attempts`). The cross-trial variance V[SR_n] pools the
per-bar Sharpe ratios we have: each tuning trial's on the inner folds and each earlier run's
out of sample. PBO runs by CSCV over the tuning trials' inner-fold returns, when tuning ran.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tradeloop.errors import BadInput
from tradeloop.evaluation.metrics import sharpe
from tradeloop.evaluation.result import BacktestResult
from tradeloop.evaluation.selection import blocks_for, deflated_sharpe, pbo
from tradeloop.registry.attempts import earlier_attempts
from tradeloop.registry.mlflow_registry import Registry
from tradeloop.training.tuning_step import TuningOutcome

PBO_BLOCKS = 16


def selection_report(
    pipeline: str,
    registry: Registry,
    run_id: str,
    result: BacktestResult,
    tuning: TuningOutcome | None,
) -> dict[str, Any]:
    """`deflated_sharpe` and `pbo` (None when they cannot be computed, with `*_note` saying
    why), the trial count behind them, and each statistic's details."""
    attempts = earlier_attempts(registry, pipeline, exclude=run_id)
    n_tuning = len(tuning.doc["trials"]) if tuning is not None else 0
    n_trials = max(1, n_tuning) + len(attempts)
    matrix = tuning.trial_returns if tuning is not None else None
    trial_sharpes = [s for s in _column_sharpes(matrix) if s is not None]
    trial_sharpes += [a.sharpe_per_period for a in attempts if a.sharpe_per_period is not None]
    doc: dict[str, Any] = {
        "deflated_sharpe": None,
        "pbo": None,
        "n_trials": n_trials,
        "trials": {"tuning": n_tuning, "earlier_runs": len(attempts)},
        "kurtosis": "Pearson (normal = 3), population moments",
    }
    returns = result.equity.get_column("net_return").to_numpy()[1:]
    try:
        dsr = deflated_sharpe(returns, n_trials, trial_sharpes)
        doc["deflated_sharpe"] = dsr.value
        doc["dsr"] = dsr.to_dict()
    except BadInput as exc:
        doc["deflated_sharpe_note"] = f"not computed: {exc}"
    if matrix is None:
        doc["pbo_note"] = (
            "not computed: needs at least 2 completed tuning trials"
            if tuning is not None
            else "not computed: no tuning ran (training.tuning.trials: 0)"
        )
        return doc
    blocks = blocks_for(matrix.shape[0], PBO_BLOCKS)
    if blocks is None:
        doc["pbo_note"] = f"not computed: {matrix.shape[0]} inner-fold bars are too few for CSCV"
        return doc
    try:
        res = pbo(matrix, blocks)
    except BadInput as exc:
        doc["pbo_note"] = f"not computed: {exc}"
        return doc
    doc["pbo"] = res.pbo
    doc["pbo_detail"] = {**res.to_dict(), "method": "CSCV, per-bar Sharpe, inner folds"}
    return doc


def _column_sharpes(matrix: np.ndarray | None) -> list[float | None]:
    if matrix is None:
        return []
    return [sharpe(matrix[:, j]) for j in range(matrix.shape[1])]


def selection_metrics(doc: dict[str, Any]) -> dict[str, float]:
    """The statistics as metrics (MLflow, gates): only those that were computed."""
    out = {"selection_trials": float(doc["n_trials"])}
    for key in ("deflated_sharpe", "pbo"):
        if doc.get(key) is not None:
            out[key] = float(doc[key])
    if "dsr" in doc:
        out["psr"] = float(doc["dsr"]["psr"])
    return out
