"""Training targets: what happens after bar t, kept apart from features, which see only <= t.

fwd_return[t] = close[t+h] / close[t] - 1 uses exactly two closes, the bar's own and the one h
bars later in the same symbol; it is null for a symbol's last h bars (the future is not there
yet), and wherever it would be NaN or inf. `label` is 1.0 if fwd_return > 0 else 0.0 for
`sign`, and fwd_return itself for `return`; null where fwd_return is.
"""

from __future__ import annotations

import polars as pl

from tradeloop.features.batch import prepare_bars
from tradeloop.spec import LabelSpec


def compute_labels(bars: pl.DataFrame, spec: LabelSpec) -> pl.DataFrame:
    """`timestamp`, `symbol`, `fwd_return`, `label` (Float64), sorted by (symbol, timestamp)."""
    c = pl.col("close")
    raw = (c.shift(-spec.horizon) / c - 1.0).over("symbol")
    fwd = pl.col("fwd_return")
    label = fwd if spec.kind == "return" else pl.when(fwd > 0.0).then(1.0).otherwise(0.0)
    return (
        prepare_bars(bars, ["close"])
        .lazy()
        .select("timestamp", "symbol", raw.alias("fwd_return"))
        .with_columns(pl.when(fwd.is_finite()).then(fwd).alias("fwd_return"))
        .with_columns(pl.when(fwd.is_not_null()).then(label).cast(pl.Float64).alias("label"))
        .collect(engine="in-memory")
    )
