"""The files a training run leaves beside its model: reports, the card, and what monitoring reads.

Written to a local folder, then uploaded as the run's artifacts in one call, so a run either has
all of them or (killed before the upload) none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tradeloop.evaluation.backtest import BacktestResult, plot_equity
from tradeloop.registry.model_card import render_html, render_markdown
from tradeloop.spec import Spec
from tradeloop.training.adapters import ModelAdapter


def write_run_artifacts(
    out: Path,
    spec: Spec,
    *,
    input_schema: str,
    validation: dict[str, Any],
    gates: dict[str, Any],
    folds: list[dict[str, Any]],
    metrics: dict[str, float],
    card_info: dict[str, Any],
    result: BacktestResult,
    final: pl.DataFrame,
    model: ModelAdapter,
    X: np.ndarray,
) -> None:
    (out / "input_schema.json").write_text(input_schema)
    (out / "validation_report.json").write_text(json.dumps(validation, indent=2))
    (out / "gates.json").write_text(json.dumps(gates, indent=2))
    (out / "folds.json").write_text(json.dumps(folds, indent=2, default=str))
    (out / "backtest.json").write_text(json.dumps(metrics, indent=2))
    (out / "card_info.json").write_text(json.dumps(card_info, indent=2, default=str))
    card_md = render_markdown(card_info)
    (out / "model_card.md").write_text(card_md)
    (out / "model_card.html").write_text(render_html(card_md, f"{spec.name} model card"))
    plot_equity(result, out / "equity_curve.png", title=f"{spec.name}: out-of-sample equity")
    reference_profile(final, spec, model, X, out)


def reference_profile(
    frame: pl.DataFrame, spec: Spec, model: ModelAdapter, X: np.ndarray, out: Path
) -> None:
    """What the model saw (features and its predictions), so monitoring never re-reads data."""
    from tradeloop.monitoring.drift import ReferenceProfile

    table = frame.select(spec.feature_names).with_columns(
        pl.Series("prediction", model.predict(X).astype(np.float64))
    )
    profile = ReferenceProfile.from_table(table)
    (out / "reference_profile.json").write_text(json.dumps(profile.to_dict()))
