"""The training run's reports beyond the headline metrics: segments, explanations, and what
the model card must state truthfully (environment, data ranges, purge and embargo as applied)."""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tradeloop.evaluation.explain import Explainer, encode, global_importance
from tradeloop.evaluation.result import BacktestResult
from tradeloop.evaluation.segments import segment_report
from tradeloop.spec import Spec
from tradeloop.training.adapters import ModelAdapter

IMPORTANCE_ROWS = 5000
EXPLAINER_FILE = "explainer.json"


def segments_of(spec: Spec, result: BacktestResult, bars: pl.DataFrame) -> dict[str, Any]:
    """The segment report of the out-of-sample backtest; regimes from the whole bar history
    up to each decision bar (point-in-time), so the first test bars have a warm regime."""
    ppy = float(result.metrics["periods_per_year"])
    return segment_report(result.ledger, bars, spec.data.frequency, ppy)


def explanation_of(
    model: ModelAdapter, features: list[str], X: np.ndarray
) -> tuple[bytes | None, list[dict[str, Any]]]:
    """The final model's explainer (canonical bytes, None if the model type has none) and its
    global importance: mean |attribution| over the latest `IMPORTANCE_ROWS` training rows."""
    doc = model.explainer_doc(features)
    if doc is None:
        return None, []
    data = encode(doc)
    return data, global_importance(Explainer(doc).explain(X[-IMPORTANCE_ROWS:]))


def environment(root: Path) -> dict[str, Any]:
    """Versions the model was built with, and the lock file's hash (the project's own
    `uv.lock`, else the one of the tradeloop checkout in use; None when there is neither)."""
    import tradeloop

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    lock = next(
        (
            p
            for p in (root / "uv.lock", Path(tradeloop.__file__).resolve().parents[2] / "uv.lock")
            if p.is_file()
        ),
        None,
    )
    return {
        "tradeloop": version("tradeloop"),
        "python": platform.python_version(),
        "lightgbm": version("lightgbm"),
        "onnxruntime": version("onnxruntime"),
        "scikit-learn": version("scikit-learn"),
        "uv_lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest() if lock else None,
        "uv_lock": str(lock) if lock else None,
    }


def data_ranges(bars: pl.DataFrame) -> list[dict[str, Any]]:
    """Per symbol: first and last bar and how many, as trained on."""
    ranges = (
        bars.group_by("symbol")
        .agg(
            pl.col("timestamp").min().alias("start"),
            pl.col("timestamp").max().alias("end"),
            pl.len().alias("bars"),
        )
        .sort("symbol")
    )
    return [
        {
            "symbol": r["symbol"],
            "start": r["start"].isoformat(),
            "end": r["end"].isoformat(),
            "bars": int(r["bars"]),
        }
        for r in ranges.to_dicts()
    ]


def purge_applied(folds: list[dict[str, Any]], spec: Spec) -> dict[str, Any]:
    """Purge and embargo as the folds applied them, beside what the spec asked for:
    walk-forward folds train only before their test block, so no embargo ever applies."""
    return {
        "scheme": "walk-forward",
        "purged_bars": [int(f["purged_bars"]) for f in folds],
        "embargo_bars": [int(f["embargo"]) for f in folds],
        "embargoed_bars": [int(f["embargoed_bars"]) for f in folds],
        "embargo_in_spec": spec.training.split.embargo,
        "horizon": spec.labels.horizon,
    }
