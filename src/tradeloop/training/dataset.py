"""The training table: point-in-time features joined with forward labels, rows complete."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from tradeloop.errors import BadInput
from tradeloop.features.batch import compute_features
from tradeloop.features.labels import compute_labels
from tradeloop.spec import Spec


def bars_as_of(bars: pl.DataFrame, as_of: datetime | None) -> pl.DataFrame:
    """Only bars that exist at `as_of`: training on a simulated clock never sees the future."""
    if as_of is None:
        return bars
    return bars.filter(pl.col("timestamp") <= as_of)


def training_frame(bars: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """timestamp, symbol, the spec's features, fwd_return, label; rows with any null dropped.

    A label needs bars t+1..t+h, so the last h bars of each symbol have none and are dropped:
    the model is never fit on a target that was not yet known.
    """
    feats = compute_features(bars, spec.features)
    labels = compute_labels(bars, spec.labels)
    empty = [c for c in spec.feature_names if feats[c].null_count() == feats.height]
    if empty:
        raise BadInput(
            f"features {empty} are empty for this data (e.g. volume features on "
            "data without volume); remove them from the spec"
        )
    frame = feats.join(labels, on=["timestamp", "symbol"], how="inner").drop_nulls()
    if frame.height == 0:
        raise BadInput(
            "no complete training rows: the history is shorter than the longest "
            "feature window plus the label horizon"
        )
    return frame.sort("timestamp", "symbol")


def xy(frame: pl.DataFrame, features: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.ascontiguousarray(frame.select(features).to_numpy(), dtype=np.float32)
    return X, frame["label"].to_numpy(), frame["fwd_return"].to_numpy()


def final_rows(frame: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """All labelled rows (expanding), or the latest `train_bars` bars (sliding): the final model
    sees the same kind of window its walk-forward folds were judged on."""
    split = spec.training.split
    if split.scheme != "sliding":
        return frame
    window = split.train_bars or split.min_train_bars
    times = frame["timestamp"].unique().sort()
    return frame.filter(pl.col("timestamp") >= times[max(0, times.len() - window)])
