"""Features for a whole history at once, with Polars expressions.

The math is in `definitions`; `online` computes the same values one bar at a time, and a test
holds the two together bar by bar.

The per-symbol part runs in two stages because Polars does not share a subexpression between
window expressions: RSI written as one expression evaluates each Wilder average three times.
Stage 1 materialises the series several features read, stage 2 each feature's windows and
EWMs, and a last, element-wise step combines columns. Stages 1 and 2 are written without
`.over`: with few, long symbols they run on one partition per symbol (in parallel, half the
work of `.over`'s gather and scatter); with many symbols, under `.over("symbol")`. Both give
the same bits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from tradeloop.errors import BadInput
from tradeloop.features.definitions import (
    STD_KINDS,
    ema_alpha,
    first_valid,
    required_columns,
    validate_features,
)
from tradeloop.features.ranks import cs_ranks
from tradeloop.features.windows import EXACT_ABOVE, window_mean_std
from tradeloop.spec import FeatureSpec

_SYMBOL, _TIME = pl.col("symbol"), pl.col("timestamp")
_C, _V = pl.col("close"), pl.col("volume")
_RET, _DIFF, _IDX = "tmp.ret", "tmp.diff", "tmp.idx"  # a dot cannot occur in a feature name
_SOURCE = {"volatility": _RET, "zscore": "close", "volume_zscore": "volume"}
_PARTITION_MAX_SYMBOLS = 256  # one query per symbol: a fixed cost each
_PARTITION_MIN_BARS = 10_000  # bars per symbol from which partitions beat `.over`


def compute_features(bars: pl.DataFrame, features: Sequence[FeatureSpec]) -> pl.DataFrame:
    """`timestamp`, `symbol`, then one Float64 column per feature in spec order.

    Rows come back sorted by (symbol, timestamp), one per bar. Values before a feature's
    warm-up, and wherever it is undefined, are null; never NaN or inf.
    """
    validate_features(features)
    frame = prepare_bars(bars, required_columns(features))
    per_symbol = [f for f in features if f.kind != "cs_rank"]
    out = per_symbol_features(frame, per_symbol)
    out = out.with_columns(
        _exact_where_at_risk(out, frame, f) for f in per_symbol if f.kind in STD_KINDS
    )
    ranked = [f for f in features if f.kind == "cs_rank"]
    ranks = cs_ranks(out, [f.of or "" for f in ranked])
    return out.with_columns(r.alias(f.name) for r, f in zip(ranks, ranked, strict=True)).select(
        "timestamp", "symbol", *(pl.col(f.name).cast(pl.Float64) for f in features)
    )


def per_symbol_features(
    frame: pl.DataFrame, features: Sequence[FeatureSpec], partitioned: bool | None = None
) -> pl.DataFrame:
    """`timestamp`, `symbol`, the per-symbol `features`, and `tmp.risk.` flags for the rows
    `_exact_where_at_risk` recomputes. `frame` holds the sorted bars.

    `partitioned` None picks the faster strategy for the shape of the data.
    """
    stage1 = _shared_series(features)
    stage2 = [e for f in features for e in _window_columns(f)]
    last = [
        "timestamp",
        "symbol",
        *(_finite(_finish(f)).alias(f.name) for f in features),
        *(_at_risk(f).alias(f"tmp.risk.{f.name}") for f in features if f.kind in STD_KINDS),
    ]
    n_symbols = frame.select((_SYMBOL.shift() != _SYMBOL).sum()).item() + 1
    if partitioned is None:
        partitioned = n_symbols <= _PARTITION_MAX_SYMBOLS and (
            frame.height >= _PARTITION_MIN_BARS * n_symbols
        )
    # the streaming engine (polars' default) runs window expressions several times slower
    if partitioned and frame.height:
        parts = frame.partition_by("symbol", maintain_order=True)
        queries = [p.lazy().with_columns(stage1).with_columns(stage2).select(last) for p in parts]
        return pl.concat(pl.collect_all(queries, engine="in-memory"))
    lazy = frame.lazy().with_columns(e.over("symbol") for e in stage1)
    lazy = lazy.with_columns(e.over("symbol") for e in stage2).select(last)
    return lazy.collect(engine="in-memory")


def prepare_bars(bars: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """The bars sorted by (symbol, timestamp) with Float64 values; BadInput for what cannot work.

    Sorted input (the bars contract) is only checked, not re-sorted; a repeated
    (symbol, timestamp) is refused since no order of the two rows is the true one.
    """
    if not isinstance(bars, pl.DataFrame):
        raise BadInput(f"bars must be a polars DataFrame, not {type(bars).__name__}")
    missing = [c for c in ("timestamp", "symbol", *columns) if c not in bars.columns]
    if missing:
        raise BadInput(f"bars lack column(s) {missing}; have {bars.columns}")
    if bars.select(_SYMBOL.null_count() + _TIME.null_count()).item():
        raise BadInput("bars have null symbols or timestamps")
    frame = bars.select(
        "timestamp", _SYMBOL.cast(pl.Utf8), *(pl.col(c).cast(pl.Float64) for c in columns)
    )
    same = _SYMBOL.shift() == _SYMBOL
    ordered = frame.select(((_SYMBOL.shift() < _SYMBOL) | (same & (_TIME.shift() < _TIME))).all())
    if not ordered.item():
        frame = frame.sort("symbol", "timestamp")
        dupes = frame.filter(same & (_TIME.shift() == _TIME))
        if dupes.height:
            first = dupes.row(0, named=True)
            raise BadInput(
                f"bars repeat (symbol, timestamp) {dupes.height} time(s), "
                f"first ({first['symbol']}, {first['timestamp']})"
            )
    return frame


# ------------------------------------------------------------------------------------ stages


def _shared_series(features: Sequence[FeatureSpec]) -> list[pl.Expr]:
    """Stage 1 (per symbol): series more than one later expression reads."""
    kinds = {f.kind for f in features}
    idx = pl.int_range(pl.len())
    log_return = (_C / _C.shift(1)).log()
    out = [idx.alias(_IDX)]
    if "volatility" in kinds:
        out.append(log_return.alias(_RET))
    for source in sorted({_SOURCE[f.kind] for f in features if f.kind in STD_KINDS}):
        # bars since the value last changed: a window of w values is constant (no spread)
        # exactly when w - 1 steps have passed without a change; exact, unlike a variance
        x = log_return if source == _RET else pl.col(source)
        changed = (x != x.shift(1)).fill_null(True)
        since = idx - pl.when(changed).then(idx).forward_fill()
        out.append(since.alias(f"tmp.steady.{source}"))
    if "rsi" in kinds:
        out.append(_C.diff().alias(_DIFF))
    for f in features:
        if f.kind == "macd":
            assert f.fast is not None and f.slow is not None
            fast = _C.ewm_mean(alpha=ema_alpha(f.fast), adjust=False)
            slow = _C.ewm_mean(alpha=ema_alpha(f.slow), adjust=False)
            out.append((fast - slow).alias(_tmp("line", f)))
    return out


def _window_columns(f: FeatureSpec) -> list[pl.Expr]:
    """Stage 2 (per symbol): the feature's windows and EWMs, each computed once."""
    w = f.window or 0
    if f.kind in STD_KINDS:
        x = _std_source(f)
        # the mean of w one-bar log returns telescopes: ln(c[t] / c[t-w]) / w
        if f.kind == "volatility":
            mean = (_C / _C.shift(w)).log() / w
        else:
            mean = x.rolling_mean(w, min_samples=w)
        return [
            mean.alias(_tmp("mean", f)),
            x.rolling_std(w, min_samples=w, ddof=1).alias(_tmp("std", f)),
        ]
    if f.kind == "returns":
        return [(_C / _C.shift(w) - 1.0).alias(_tmp("value", f))]
    if f.kind == "log_returns":
        return [(_C / _C.shift(w)).log().alias(_tmp("value", f))]
    if f.kind == "volume_ratio":
        return [_V.rolling_mean(w, min_samples=w).alias(_tmp("mean", f))]
    if f.kind == "rsi":
        d = pl.col(_DIFF)
        return [
            _wilder(d.clip(lower_bound=0.0), w).alias(_tmp("gain", f)),
            _wilder((-d).clip(lower_bound=0.0), w).alias(_tmp("loss", f)),
        ]
    if f.kind == "macd":
        assert f.signal is not None
        signal = pl.col(_tmp("line", f)).ewm_mean(alpha=ema_alpha(f.signal), adjust=False)
        return [signal.alias(_tmp("signal", f))]
    return []


def _finish(f: FeatureSpec) -> pl.Expr:
    """Element-wise: the feature from its stage 1 and 2 columns (may still hold NaN/inf)."""
    k = f.kind
    if k in ("returns", "log_returns"):
        return pl.col(_tmp("value", f))
    if k == "range":
        return (pl.col("high") - pl.col("low")) / _C
    if k == "volume_ratio":
        mean = pl.col(_tmp("mean", f))
        return pl.when(mean > 0).then(_V / mean)
    if k in STD_KINDS:
        spread, std = _spread(f), pl.col(_tmp("std", f))
        if k == "volatility":
            return pl.when(spread).then(std)
        return pl.when(spread).then((_std_source(f) - pl.col(_tmp("mean", f))) / std)
    if k == "rsi":
        gain, loss = pl.col(_tmp("gain", f)), pl.col(_tmp("loss", f))
        return pl.when(gain + loss > 0).then(100.0 * gain / (gain + loss))
    if k == "macd":
        hist = pl.col(_tmp("line", f)) - pl.col(_tmp("signal", f))
        return pl.when(pl.col(_IDX) >= first_valid(f)).then(hist / _C)
    raise BadInput(f"feature '{f.name}': kind {k!r} is not a per-symbol feature")


# --------------------------------------------------------------------------------- helpers


def _finite(e: pl.Expr) -> pl.Expr:
    return pl.when(e.is_finite()).then(e)


def _tmp(what: str, f: FeatureSpec) -> str:
    return f"tmp.{what}.{f.name}"


def _std_source(f: FeatureSpec) -> pl.Expr:
    """The series a std kind takes its window statistics of (after stage 1)."""
    return pl.col(_SOURCE[f.kind])


def _spread(f: FeatureSpec) -> pl.Expr:
    """True where the window holds at least two different values."""
    return pl.col(f"tmp.steady.{_SOURCE[f.kind]}") < (f.window or 0) - 1


def _wilder(x: pl.Expr, w: int) -> pl.Expr:
    """Wilder's average of x (null at bar 0): seeded with the mean of x[1..w] at bar w."""
    idx = pl.int_range(pl.len())
    seeded = pl.when(idx == w).then(x.cum_sum() / w).when(idx > w).then(x)
    return seeded.ewm_mean(alpha=1.0 / w, adjust=False)


def _at_risk(f: FeatureSpec) -> pl.Expr:
    """True where the window's rolling std is too imprecise to keep (see `windows`)."""
    mean, std = pl.col(_tmp("mean", f)), pl.col(_tmp("std", f))
    return (_spread(f) & (std * EXACT_ABOVE < mean.abs())).fill_null(False)


def _exact_where_at_risk(out: pl.DataFrame, frame: pl.DataFrame, f: FeatureSpec) -> pl.Series:
    """Feature `f` with its at-risk rows recomputed exactly. Rows are sorted by symbol, so the
    window of a row past warm-up is the w rows ending at it."""
    values = out[f.name]
    rows = np.flatnonzero(out[f"tmp.risk.{f.name}"].to_numpy())
    if rows.size == 0:
        return values
    if f.kind == "volatility":
        close = frame["close"].to_numpy()
        source = np.empty_like(close)
        source[0] = np.nan
        source[1:] = np.log(close[1:] / close[:-1])
    else:
        source = frame["close" if f.kind == "zscore" else "volume"].to_numpy()
    mean, std = window_mean_std(source, rows, f.window or 0)
    exact = values.to_numpy().copy()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        exact[rows] = std if f.kind == "volatility" else (source[rows] - mean) / std
    exact[~np.isfinite(exact)] = np.nan
    return pl.Series(f.name, exact, nan_to_null=True)
