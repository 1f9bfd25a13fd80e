"""Reading tables column by column, and deciding which columns are numeric or categorical.

The bottom of the drift package: everything else reads its inputs through this module.

Inputs are polars or pandas DataFrames or mappings of name -> array; every column becomes a
polars Series. Column types mirror Evidently's `infer_column_type`: floats are numeric;
integers are categorical with at most 10 distinct values, else numeric; booleans and polars
categoricals are categorical; strings are categorical unless more than half of the non-null
values are distinct (Evidently calls those text and runs a text-drift model; we skip them);
dates and times are skipped. Evidently infers types from the current data; we infer them from
the reference, so a profile fixes a column's type at training time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

import numpy as np
import polars as pl

from tradeloop.errors import BadInput

ColumnKind = Literal["numeric", "categorical"]

INTEGER_CARDINALITY_LIMIT = 10  # Evidently: integers with more distinct values are numeric
TEXT_UNIQUE_SHARE = 0.5  # Evidently: strings with more distinct values than this share are text

T = TypeVar("T")


def as_columns(table: Any) -> dict[str, pl.Series]:
    """polars/pandas DataFrame or a mapping of name -> array to polars Series by name."""
    if isinstance(table, pl.LazyFrame):
        table = table.collect()
    if isinstance(table, pl.DataFrame):
        return {c: table.get_column(c) for c in table.columns}
    if type(table).__module__.startswith("pandas") and hasattr(table, "columns"):
        names = [str(c) for c in table.columns]
        if len(set(names)) != len(names):
            raise BadInput("the table has duplicate column names")
        return {str(c): _to_series(str(c), table[c]) for c in table.columns}
    if isinstance(table, Mapping):
        return {str(k): _to_series(str(k), v) for k, v in table.items()}
    raise BadInput(
        f"expected a polars or pandas DataFrame or a dict of arrays, got {type(table).__name__}"
    )


def _to_series(name: str, values: Any) -> pl.Series:
    try:
        if isinstance(values, pl.Series):
            return values.rename(name)
        if type(values).__module__.startswith("pandas"):
            series = pl.from_pandas(values)
            if not isinstance(series, pl.Series):
                raise BadInput(f"column {name!r}: expected one column, got a table")
            return series.rename(name)
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise BadInput(f"column {name!r}: expected a 1-D array, got shape {arr.shape}")
        return pl.Series(name, arr)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise BadInput(f"column {name!r}: cannot read its values: {exc}") from exc


def detect_kind(s: pl.Series) -> ColumnKind | None:
    """Evidently's column type rules (module docstring); None for a column we do not test."""
    dt = s.dtype
    if dt.is_float():
        return "numeric"
    if dt.is_integer():
        return "categorical" if len(category_counts(s)) <= INTEGER_CARDINALITY_LIMIT else "numeric"
    if dt == pl.Boolean or isinstance(dt, pl.Categorical | pl.Enum):
        return "categorical"
    if dt == pl.String:
        values = s.drop_nulls()
        return None if values.n_unique() > len(values) * TEXT_UNIQUE_SHARE else "categorical"
    if dt.is_numeric():
        return "numeric"
    return None


def skip_reason(s: pl.Series) -> str:
    if s.dtype == pl.String:
        return "text: more than half of the values are distinct"
    return f"type {s.dtype} is not tested for drift"


def numeric_values(s: pl.Series) -> np.ndarray:
    """float64 values (nulls as NaN) without copying when the column is already Float64."""
    if s.dtype != pl.Float64:
        s = s.cast(pl.Float64)
    return s.to_numpy()


def category_counts(s: pl.Series) -> dict[Any, int]:
    """Count of each non-null value; integers and booleans counted in numpy (bincount)."""
    s = s.drop_nulls()
    if s.dtype.is_integer() or s.dtype == pl.Boolean:
        keys, counts = _integer_counts(s.to_numpy())
        return dict(zip(keys.tolist(), counts.tolist(), strict=True))
    vc = s.rename("value").value_counts()
    return dict(
        zip(vc.get_column("value").to_list(), vc.get_column("count").to_list(), strict=True)
    )


def _integer_counts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(x) == 0:
        return x, np.zeros(0, dtype=np.int64)
    if x.dtype == np.bool_:
        ones = int(np.count_nonzero(x))
        keys, counts = np.array([False, True]), np.array([len(x) - ones, ones])
        return keys[counts > 0], counts[counts > 0]
    lo, hi = int(x.min()), int(x.max())
    if hi - lo > 4 * len(x) + 1024:
        return np.unique(x, return_counts=True)
    counts = np.bincount((x - lo).astype(np.int64, copy=False))
    keys = np.flatnonzero(counts)
    return keys + lo, counts[keys]


def parallel_map(fn: Callable[[str], T], names: Sequence[str]) -> list[T]:
    """Run per-column work on threads: numpy and polars release the GIL while they sort."""
    workers = min(len(names), os.cpu_count() or 1)
    if workers <= 1:
        return [fn(n) for n in names]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, names))
