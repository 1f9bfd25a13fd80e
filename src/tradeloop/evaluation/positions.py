"""The prediction -> position rule, written once for the backtest, live grading and serving.

+1 when prediction > long_threshold, -1 when prediction < short_threshold (and `allow_short`),
else 0; a missing (null or NaN) prediction is flat. For `task="classification"` the prediction
is P(up) and the thresholds are probabilities in [0, 1]; for `task="regression"` it is the
forward return and the thresholds are returns centred on 0 (e.g. 0.0005 / -0.0005).

The rule is one function, `_rule`, over a `where(condition, then, otherwise)`; the scalar,
numpy and polars forms only supply their own `where`, so they cannot drift apart:

    rule = PositionRule.for_task(spec.backtest, spec.model.task)
    rule.scalar(0.61)                       # 1
    rule.array(np.array([0.3, 0.5, 0.7]))   # [-1., 0., 1.]
    frame.with_columns(rule.expr(pl.col("prediction")).alias("position"))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import polars as pl

from tradeloop.errors import BadInput
from tradeloop.spec import BacktestSpec, check_threshold_order, check_thresholds

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")
V = TypeVar("V")

# The defaults live on the spec (the bottom layer every caller shares); a classifier that sets
# no thresholds trades on these everywhere. A regression model has no default: it must set
# thresholds around 0, and the probability-like defaults are refused for it.
_DEFAULTS = BacktestSpec()
DEFAULT_LONG_THRESHOLD: float = _DEFAULTS.long_threshold
DEFAULT_SHORT_THRESHOLD: float = _DEFAULTS.short_threshold

__all__ = [
    "DEFAULT_LONG_THRESHOLD",
    "DEFAULT_SHORT_THRESHOLD",
    "TASKS",
    "PositionRule",
    "Task",
    "signal_thresholds",
]


def signal_thresholds(spec: BacktestSpec, task: Task) -> tuple[float, float]:
    """(long, short) thresholds for `task`; BadInput when they do not fit it (the spec's own
    rules, applied again for specs built in code)."""
    long_t, short_t = spec.long_threshold, spec.short_threshold
    if task not in TASKS:
        raise BadInput(f"task must be 'classification' or 'regression', got {task!r}")
    try:
        check_thresholds(long_t, short_t, task)
    except ValueError as exc:
        raise BadInput(str(exc)) from exc
    return long_t, short_t


@dataclass(frozen=True)
class PositionRule:
    long_threshold: float = DEFAULT_LONG_THRESHOLD
    short_threshold: float = DEFAULT_SHORT_THRESHOLD
    allow_short: bool = True

    def __post_init__(self) -> None:
        try:
            check_threshold_order(self.long_threshold, self.short_threshold)
        except ValueError as exc:
            raise BadInput(str(exc)) from exc

    @classmethod
    def for_task(cls, spec: BacktestSpec, task: Task) -> PositionRule:
        """The rule a backtest spec sets for a model of `task` (BadInput if they do not fit)."""
        long_t, short_t = signal_thresholds(spec, task)
        return cls(long_t, short_t, spec.allow_short)

    def _rule(self, p: Any, where: Callable[[Any, float, V | float], V]) -> V:
        short = -1.0 if self.allow_short else 0.0
        return where(p > self.long_threshold, 1.0, where(p < self.short_threshold, short, 0.0))

    def scalar(self, prediction: float) -> int:
        """+1, -1 or 0 for one prediction (NaN is flat: it compares false)."""

        def where(cond: bool, then: float, otherwise: float) -> float:
            return then if cond else otherwise

        return int(self._rule(float(prediction), where))

    def array(self, predictions: np.ndarray) -> np.ndarray:
        """Float64 positions for an array of predictions (NaN is flat)."""
        p = np.asarray(predictions, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            out: np.ndarray = self._rule(p, np.where)
        return out.astype(np.float64, copy=False)

    def expr(self, prediction: pl.Expr) -> pl.Expr:
        """Float64 positions as a polars expression (null and NaN are flat; polars would
        otherwise order NaN above every number and go long on it)."""

        def where(cond: pl.Expr, then: float, otherwise: pl.Expr | float) -> pl.Expr:
            return pl.when(cond).then(then).otherwise(otherwise)

        return self._rule(prediction.cast(pl.Float64).fill_nan(None), where)
