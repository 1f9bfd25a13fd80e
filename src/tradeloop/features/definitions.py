"""What each feature kind means: the one definition both the batch and the online paths implement.

Per symbol, bars are indexed t = 0, 1, ... in timestamp order; `c`, `h`, `l`, `v` are close, high,
low and volume; `w` is the feature's `window`. A value at bar t uses bars <= t only. "null" means
undefined (warm-up, zero spread, division by zero); no feature is ever NaN or inf.

================  ================================================================  ============
kind              value at bar t                                                     first value
================  ================================================================  ============
returns           c[t] / c[t-w] - 1                                                  w
log_returns       ln(c[t] / c[t-w])                                                  w
volatility        sample std (ddof=1) of r[s] = ln(c[s]/c[s-1]), s = t-w+1..t        w
rsi               100 * G[t] / (G[t] + L[t]), Wilder smoothing (below)               w
macd              (M[t] - S[t]) / c[t]: the MACD histogram over price (below)        slow+signal-1
zscore            (c[t] - mean(c[t-w+1..t])) / std(c[t-w+1..t], ddof=1)              w-1
volume_zscore     as zscore, on volume                                               w-1
volume_ratio      v[t] / mean(v[t-w+1..t])                                           w-1
range             (h[t] - l[t]) / c[t]                                               0
cs_rank           (rank - 1) / (n - 1) of feature `of` across symbols at timestamp   as `of`
================  ================================================================  ============

"first value" is the 0-based index t of the first bar with a value (`first_valid`); every bar
before it is null: returns over w bars need w + 1 closes, MACD needs slow + signal bars.

- Standard deviations use ddof=1, so the std kinds need `window >= 2`. A window whose values
  are all equal (tested exactly, in both paths) has no spread: the value is null,
  never inf, NaN or rounding noise.
- rsi: gains up[s] = max(c[s] - c[s-1], 0) and losses down[s] = max(c[s-1] - c[s], 0), s >= 1.
  G and L start as the simple means of the first w gains and losses (at t = w) and then follow
  G[t] = (1 - a) G[t-1] + a up[t] with a = 1/w (an EWM with adjust=False). The seed is Wilder's
  own (and TA-Lib's) and needs only the first w bars, so the online path reproduces it exactly.
  Null while G + L == 0 (a price flat since the start).
- macd: E_n is the EMA of close with a = 2/(n+1), adjust=False, seeded with c[0];
  M = E_fast - E_slow; S is the EMA of M with a = 2/(signal+1) seeded with M[0] (= 0). Dividing
  the histogram by the price makes it comparable across symbols and price levels. The first
  slow+signal-1 values are null: the EMAs have not forgotten their seed yet.
- volume_ratio: null while the window's mean volume is 0.
- cs_rank: over the symbols that have a bar at the same timestamp and a non-null `of`, n of
  them, average ranks for ties (ascending, 1-based); 0.5 when n == 1; null where `of` is null.

Batch and online agree on every bar to |a - b| <= 1e-12 + 1e-9 |b| (tests hold them to it), with
nulls in the same places, provided both saw the same history from the same first bar: rsi and
macd are EWMs, which never forget their seed entirely, so a server must replay the history the
model was trained on, or restore a saved `OnlineFeatures` state, not start from a recent window.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradeloop.errors import BadInput
from tradeloop.spec import STD_KINDS, FeatureSpec, check_features

__all__ = ["STD_KINDS", "ema_alpha", "first_valid", "required_columns", "validate_features"]


def ema_alpha(span: int) -> float:
    """The smoothing factor of an EMA with this span (pandas' and polars' convention)."""
    return 2.0 / (span + 1.0)


def first_valid(feature: FeatureSpec, by_name: dict[str, FeatureSpec] | None = None) -> int:
    """Index (0-based, per symbol) of the first bar with a defined value: nulls before it."""
    k, w = feature.kind, feature.window or 0
    if k in ("returns", "log_returns", "volatility", "rsi"):
        return w
    if k in ("zscore", "volume_zscore", "volume_ratio"):
        return w - 1
    if k == "macd":
        assert feature.slow is not None and feature.signal is not None
        return feature.slow + feature.signal - 1
    if k == "range":
        return 0
    if by_name is None or feature.of not in by_name:
        raise BadInput(f"feature '{feature.name}': 'of' must name another feature")
    return first_valid(by_name[feature.of], by_name)


def validate_features(features: Sequence[FeatureSpec]) -> None:
    """BadInput for a feature list neither path can compute, naming the feature.

    The rules are the spec's (`tradeloop.spec.check_features`), applied again here because a
    list built in code, or with `model_construct`, has not been through a loaded `Spec`.
    """
    try:
        check_features(features)
    except ValueError as exc:
        raise BadInput(str(exc)) from exc


def required_columns(features: Sequence[FeatureSpec]) -> list[str]:
    """Bar columns the features read, besides timestamp and symbol."""
    cols = {"close"}
    for f in features:
        if f.kind == "range":
            cols |= {"high", "low"}
        elif f.kind in ("volume_zscore", "volume_ratio"):
            cols.add("volume")
    return sorted(cols)
