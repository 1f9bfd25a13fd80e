"""The prediction -> position rule: its scalar, numpy and polars forms agree on every input."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from tradeloop.errors import BadInput
from tradeloop.evaluation.positions import (
    DEFAULT_LONG_THRESHOLD,
    DEFAULT_SHORT_THRESHOLD,
    PositionRule,
)
from tradeloop.spec import BacktestSpec

PREDICTIONS = [0.0, 0.3, 0.48, 0.49, 0.5, 0.52, 0.521, 0.9, 1.0, math.nan, -0.001, 0.001]


@pytest.mark.parametrize("allow_short", [True, False])
def test_the_three_forms_agree(allow_short: bool) -> None:
    rule = PositionRule(0.52, 0.48, allow_short)
    scalar = [float(rule.scalar(p)) for p in PREDICTIONS]
    array = rule.array(np.array(PREDICTIONS)).tolist()
    frame = pl.DataFrame({"p": PREDICTIONS})
    expr = frame.select(rule.expr(pl.col("p"))).to_series().to_list()
    assert scalar == array == expr
    short = -1.0 if allow_short else 0.0
    assert scalar[:9] == [short, short, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert scalar[9] == 0.0  # NaN is flat in every form (polars alone would rank it above all)


def test_a_null_prediction_is_flat() -> None:
    rule = PositionRule()
    frame = pl.DataFrame({"p": [None, 0.9]}, schema={"p": pl.Float64})
    assert frame.select(rule.expr(pl.col("p"))).to_series().to_list() == [0.0, 1.0]


def test_defaults_are_the_spec_defaults() -> None:
    spec = BacktestSpec()
    assert (
        spec.long_threshold,
        spec.short_threshold,
    ) == (DEFAULT_LONG_THRESHOLD, DEFAULT_SHORT_THRESHOLD)
    assert PositionRule.for_task(spec, "classification") == PositionRule()


def test_for_task_refuses_thresholds_that_do_not_fit_the_task() -> None:
    with pytest.raises(BadInput, match="regression model"):
        PositionRule.for_task(BacktestSpec(), "regression")
    with pytest.raises(BadInput, match="not probabilities"):
        PositionRule.for_task(
            BacktestSpec(long_threshold=2.0, short_threshold=-1.0), "classification"
        )
    with pytest.raises(BadInput, match="task must be"):
        PositionRule.for_task(BacktestSpec(), "ranking")  # type: ignore[arg-type]  # wrong on purpose
    rule = PositionRule.for_task(
        BacktestSpec(long_threshold=0.0005, short_threshold=-0.0005, allow_short=False),
        "regression",
    )
    assert (rule.scalar(0.001), rule.scalar(-0.001), rule.scalar(0.0)) == (1, 0, 0)


def test_short_above_long_is_refused() -> None:
    with pytest.raises(BadInput, match="short_threshold"):
        PositionRule(0.4, 0.6)
