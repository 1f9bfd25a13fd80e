"""Backtest a registered version on the spec's current data (`tradeloop backtest`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from tradeloop.data.source import checked_bars
from tradeloop.errors import NotFound
from tradeloop.evaluation.backtest import run_backtest
from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import CHAMPION, Registry
from tradeloop.training.adapters import onnx_predict
from tradeloop.training.dataset import training_frame


def backtest_version(project: Project, version: str | None) -> dict[str, Any]:
    spec = project.spec
    reg = Registry.for_project(project)
    if version is None:
        champ = reg.by_alias(spec.name, CHAMPION)
        versions = reg.versions(spec.name)
        if champ is None and not versions:
            raise NotFound(f"no registered version of {spec.name!r}; run `tradeloop train`")
        version = champ.version if champ else versions[-1].version
    onnx_bytes, v = reg.fetch_onnx(spec.name, version)
    bars, _ = checked_bars(spec.data, project.root, project.live_bars_dir)
    frame = training_frame(bars, spec)
    missing = [f for f in v.features if f not in frame.columns]
    if missing:
        raise NotFound(f"v{version} needs features {missing}, which the spec no longer defines")
    X = np.ascontiguousarray(frame.select(v.features).to_numpy(), dtype=np.float32)
    preds = frame.select("timestamp", "symbol").with_columns(
        pl.Series("prediction", onnx_predict(onnx_bytes, X).astype(np.float64))
    )
    res = run_backtest(
        preds,
        spec.backtest,
        bars=bars.select("timestamp", "symbol", "close"),
        task=v.tags.get("task", spec.model.task),  # type: ignore[arg-type]  # a tag is a str; registry wrote a Task
        frequency=spec.data.frequency,
        calendar=spec.data.calendar,
    )
    data_end = v.tags.get("data_end")
    return {
        "version": version,
        "metrics": {k: float(x) for k, x in res.metrics.items()},
        "in_sample_until": data_end,
        "note": "rows up to in_sample_until were seen in training",
    }
