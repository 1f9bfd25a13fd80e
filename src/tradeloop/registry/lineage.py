"""What a version records about where it came from: lineage tags and the model card's data.

The tags are the registry's contract (`REQUIRED_TAGS` must all be there before a version is
registered); the card data is stored as the run's `card_info.json`, from which `cards.card_for`
renders a version's card with its final version number and tags.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from tradeloop.data.snapshot import DatasetSnapshot
from tradeloop.errors import RuntimeFailure
from tradeloop.gitops.git import run_git
from tradeloop.registry.model_card import CARD_METRICS
from tradeloop.spec import Spec, format_duration


def code_revision(root: Path) -> str:
    """The user's repo at HEAD (`-dirty` if the tree has changes), or `none` outside git."""
    try:
        head = run_git(["rev-parse", "HEAD"], cwd=root, ok=None)
        if head.returncode != 0:
            return "none"
        dirty = run_git(["status", "--porcelain", "--untracked-files=no"], cwd=root)
    except RuntimeFailure:
        return "none"
    sha = head.stdout.decode().strip()
    return sha + ("-dirty" if dirty.stdout.strip() else "")


def run_tags(
    spec: Spec,
    snapshot: DatasetSnapshot,
    *,
    reason: str,
    spec_hash: str,
    code_revision: str,
    extra: dict[str, str],
) -> dict[str, str]:
    """Tags on the training run itself (the version's tags repeat and extend them)."""
    return {
        "tradeloop.reason": reason,
        "tradeloop.pipeline": spec.name,
        "dataset_hash": snapshot.hash,
        "spec_hash": spec_hash,
        "code_revision": code_revision,
        **extra,
    }


def lineage_tags(
    spec: Spec,
    snapshot: DatasetSnapshot,
    *,
    onnx_sha256: str,
    spec_hash: str,
    code_revision: str,
    gates_passed: bool,
    run_id: str,
    reason: str,
    trained_at: datetime,
    metrics: dict[str, float],
) -> dict[str, str]:
    """The version tags: data, code and spec hashes, the ONNX sha256, and the card metrics."""
    return {
        "dataset_hash": snapshot.hash,
        "onnx_sha256": onnx_sha256,
        "spec_hash": spec_hash,
        "code_revision": code_revision,
        "features": json.dumps(spec.feature_names),
        "gates_passed": str(gates_passed).lower(),
        "training_run": run_id,
        "reason": reason,
        "model_type": spec.model.type,
        "task": spec.model.task,
        "horizon": str(spec.labels.horizon),
        "trained_at": trained_at.isoformat(),
        "data_end": snapshot.end,
        **{f"metric.{k}": f"{v:.6g}" for k, v in metrics.items() if k in CARD_METRICS},
    }


def card_info(
    spec: Spec,
    snapshot: DatasetSnapshot,
    *,
    validation_warnings: int,
    model: dict[str, Any],
    training_rows: int,
    tuning: dict[str, Any] | None,
    folds: list[dict[str, Any]],
    metrics: dict[str, float],
    gates: dict[str, Any],
    lineage: dict[str, str],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The model card's data; `version` is filled in when a card is rendered for a version.
    `extra`: further sections (selection, segments, importance, environment, ...) as is."""
    return {
        "name": spec.name,
        "version": None,
        "label": spec.labels.kind,
        "horizon": spec.labels.horizon,
        "data": {
            "hash": snapshot.hash,
            "rows": snapshot.rows,
            "symbols": snapshot.symbols,
            "start": snapshot.start,
            "end": snapshot.end,
            "source": spec.data.source,
            "frequency": format_duration(spec.data.frequency),
            "warnings": validation_warnings,
        },
        "features": [f.model_dump(exclude_none=True) for f in spec.features],
        "model": model,
        "training": {
            "scheme": spec.training.split.scheme,
            "embargo_in_spec": spec.training.split.embargo,
            "rows": training_rows,
            "seed": spec.training.seed,
            "tuning": (
                f"{len(tuning['trials'])} trials, best {tuning['best_value']}" if tuning else None
            ),
        },
        "folds": folds,
        "backtest": metrics,
        "gates": gates,
        "costs": {
            "cost_bps": spec.backtest.cost_bps,
            "slippage_bps": spec.backtest.slippage_bps,
        },
        "lineage": lineage,
        **(extra or {}),
    }
