"""`number_rows`: a large request takes the bulk check, and it refuses exactly what the
per-value loop refuses, with the loop's message naming the first bad value."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tradeloop.serving.http import ApiError
from tradeloop.serving.inputs import number_rows


def _rows() -> list[list[Any]]:
    return np.random.default_rng(1).normal(size=(40, 3)).tolist()


def test_bulk_rows_equal_float32_of_the_values() -> None:
    rows = _rows()
    rows[5][1] = 7  # ints are numbers too
    x = number_rows(rows, 3, "data")
    assert x.dtype == np.float32 and x.shape == (40, 3)
    assert x.tolist() == np.array(rows, dtype=np.float32).tolist()


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (True, "must be a number, got boolean"),
        ("1.5", "must be a number, got string"),
        (None, "must be a number, got null"),
        (float("nan"), "NaN and infinite"),
        (float("inf"), "NaN and infinite"),
        (1e39, "outside the float32 range"),
        (10**400, "outside the float32 range"),
    ],
)
def test_bulk_rows_refuse_what_the_loop_refuses(bad: Any, says: str) -> None:
    rows = _rows()
    rows[31][2] = bad
    with pytest.raises(ApiError) as exc:
        number_rows(rows, 3, "data")
    assert exc.value.status == 400
    assert "data[31][2]" in exc.value.message and says in exc.value.message


def test_bulk_rows_refuse_a_short_row() -> None:
    rows = _rows()
    rows[20] = rows[20][:2]
    with pytest.raises(ApiError, match=r"data\[20\] has 2 values, expected 3"):
        number_rows(rows, 3, "data")
