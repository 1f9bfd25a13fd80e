"""The gates a training run must pass: absolute ones, and the challenger vs the champion."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from tradeloop.evaluation.gates import GateReport, GateResult, evaluate_gates
from tradeloop.registry.mlflow_registry import ModelVersion, Registry
from tradeloop.spec import GatesSpec, Spec
from tradeloop.training.adapters import onnx_predict
from tradeloop.training.out_of_sample import backtest, finite_metrics


def gate_report(
    spec: Spec,
    registry: Registry,
    metrics: dict[str, float],
    champ: ModelVersion | None,
    frame: pl.DataFrame,
    oos: pl.DataFrame,
    closes: pl.DataFrame,
) -> GateReport:
    """The absolute gates on the out-of-sample metrics, then the champion gate."""
    absolute = evaluate_gates(metrics, spec.gates.model_copy(update={"champion": None}))
    vs_champion = champion_gate(spec, registry, champ, frame, oos, closes)
    return GateReport(
        absolute.gates + vs_champion.gates,
        tuple(s for s in absolute.skipped if s != "champion") + vs_champion.skipped,
    )


def champion_gate(
    spec: Spec,
    registry: Registry,
    champ: ModelVersion | None,
    frame: pl.DataFrame,
    oos: pl.DataFrame,
    closes: pl.DataFrame,
) -> GateReport:
    """Challenger vs champion on the same window, which neither has trained on: the
    out-of-sample rows after the champion's last training bar."""
    cg = spec.gates.champion
    only = GatesSpec(
        min_sharpe=None, max_drawdown=None, min_hit_rate=None, min_ic=None, champion=cg
    )
    if cg is None:
        return GateReport((), ("champion",))
    if champ is None:
        return _champion_only(evaluate_gates({}, only, None))
    name = f"champion_{cg.metric}"
    missing = [f for f in champ.features if f not in frame.columns]
    if missing:
        return _failed(
            name,
            f"champion v{champ.version} needs features {missing} that this spec no longer defines",
        )
    end = datetime.fromisoformat(champ.tags.get("data_end", "1970-01-01T00:00:00+00:00"))
    window = oos.filter(pl.col("timestamp") > end)
    n_bars = window["timestamp"].n_unique()
    if n_bars < cg.min_bars:
        return _failed(
            name,
            f"only {n_bars} out-of-sample bars after champion "
            f"v{champ.version}'s data ({end.isoformat()}); need "
            f"{cg.min_bars} to compare them fairly",
        )
    rows = frame.with_row_index("_row").join(
        window.select("timestamp", "symbol"), on=["timestamp", "symbol"]
    )
    onnx_bytes, _ = registry.fetch_onnx(spec.name, champ.version)
    X = np.ascontiguousarray(rows.select(champ.features).to_numpy(), dtype=np.float32)
    theirs = rows.select("timestamp", "symbol").with_columns(
        pl.Series("prediction", onnx_predict(onnx_bytes, X).astype(np.float64))
    )
    ours = finite_metrics(backtest(spec, window, closes).metrics)
    champ_metrics = finite_metrics(backtest(spec, theirs, closes).metrics)
    return _champion_only(evaluate_gates(ours, only, champ_metrics))


def _failed(name: str, detail: str) -> GateReport:
    return GateReport((GateResult(name, None, None, ">=", False, detail),))


def _champion_only(report: GateReport) -> GateReport:
    """The champion gate alone: the absolute gates are checked (and skipped) elsewhere, and
    listing them again as skipped here made `gates.skipped` name gates that had passed."""
    return GateReport(report.gates, ())
