"""The pipeline's earlier training runs in MLflow: the attempts a deflated Sharpe must count.

Every finished top-level training run of a pipeline is one configuration somebody looked at
(registered or refused by its gates alike), so each adds one to the trial count, and its
out-of-sample Sharpe joins the cross-trial variance. Tuning trials are child runs and are
counted by the run that made them, not here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tradeloop.registry.mlflow_registry import Registry

PIPELINE_TAG = "tradeloop.pipeline"
PARENT_TAG = "mlflow.parentRunId"
_MAX_RUNS = 5000


@dataclass(frozen=True)
class Attempt:
    run_id: str
    sharpe_per_period: float | None  # oos_sharpe / sqrt(oos_periods_per_year), if logged


def earlier_attempts(registry: Registry, pipeline: str, *, exclude: str) -> list[Attempt]:
    """Finished top-level training runs of `pipeline` other than `exclude` (the current run)."""
    experiment = registry.experiment_id(pipeline)
    runs = registry.client.search_runs(
        [experiment],
        filter_string=f"tags.`{PIPELINE_TAG}` = '{pipeline}' and attributes.status = 'FINISHED'",
        max_results=_MAX_RUNS,
    )
    out = []
    for run in runs:
        if run.info.run_id == exclude or PARENT_TAG in run.data.tags:
            continue
        m = run.data.metrics
        sharpe, ppy = m.get("oos_sharpe"), m.get("oos_periods_per_year")
        per_period = (
            sharpe / math.sqrt(ppy)
            if sharpe is not None and ppy is not None and ppy > 0 and math.isfinite(sharpe)
            else None
        )
        out.append(Attempt(run.info.run_id, per_period))
    return out
