"""Declarative features and labels: batch (Polars) for training, incremental for serving.

Both paths implement the definitions in `tradeloop.features.definitions` and agree bar by bar.
"""

from tradeloop.features.batch import compute_features
from tradeloop.features.definitions import first_valid, validate_features
from tradeloop.features.labels import compute_labels
from tradeloop.features.online import OnlineFeatures

__all__ = [
    "OnlineFeatures",
    "compute_features",
    "compute_labels",
    "first_valid",
    "validate_features",
]
