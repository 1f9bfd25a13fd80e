"""The `features` and `labels` sections, and the rules a feature list must satisfy.

The rules are defined here once: the spec applies them when it loads, and
`tradeloop.features` applies the same functions to a feature list built in code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from tradeloop.spec.base import SpecModel

RESERVED_NAMES = frozenset({"timestamp", "symbol"})
STD_KINDS = frozenset({"volatility", "zscore", "volume_zscore"})  # ddof=1 stds: window >= 2

FeatureKind = Literal[
    "returns",
    "log_returns",
    "volatility",
    "rsi",
    "macd",
    "zscore",
    "volume_zscore",
    "volume_ratio",
    "range",
    "cs_rank",
]


class FeatureSpec(SpecModel):
    """One feature. Windows count bars; every value at bar t uses bars <= t only."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    kind: FeatureKind
    window: int | None = Field(None, ge=1)
    fast: int | None = Field(None, ge=1)
    slow: int | None = Field(None, ge=2)
    signal: int | None = Field(None, ge=1)
    of: str | None = Field(None, description="for cs_rank: the feature ranked across symbols")

    @model_validator(mode="after")
    def _params(self) -> FeatureSpec:
        check_feature(self)
        return self


def default_features() -> list[FeatureSpec]:
    """The features a spec without a `features` section gets."""
    return [
        FeatureSpec(name="ret_1", kind="returns", window=1),
        FeatureSpec(name="ret_5", kind="returns", window=5),
        FeatureSpec(name="ret_20", kind="returns", window=20),
        FeatureSpec(name="vol_20", kind="volatility", window=20),
        FeatureSpec(name="rsi_14", kind="rsi", window=14),
        FeatureSpec(name="macd", kind="macd", fast=12, slow=26, signal=9),
        FeatureSpec(name="z_20", kind="zscore", window=20),
        FeatureSpec(name="vz_20", kind="volume_zscore", window=20),
        FeatureSpec(name="rank_ret_5", kind="cs_rank", of="ret_5"),
    ]


class LabelSpec(SpecModel):
    horizon: int = Field(1, ge=1, description="forward bars: label at t uses bars t+1..t+h")
    kind: Literal["sign", "return"] = "sign"


def check_feature(f: FeatureSpec) -> None:
    """The rules one feature obeys on its own; ValueError for the first it breaks."""
    k = f.kind
    if f.name in RESERVED_NAMES:
        raise ValueError("the name is reserved for the key column")
    if k == "macd":
        if f.fast is None or f.slow is None or f.signal is None:
            raise ValueError("macd needs fast, slow and signal")
        if f.fast >= f.slow:
            raise ValueError("macd needs fast < slow")
    elif k == "cs_rank":
        if f.of is None:
            raise ValueError("cs_rank needs 'of' (the feature to rank)")
    elif k != "range" and f.window is None:
        raise ValueError(f"{k} needs 'window'")
    if k in STD_KINDS and f.window is not None and f.window < 2:
        raise ValueError(f"{k} needs window >= 2 (a standard deviation of one value)")


def check_feature_list(features: Sequence[FeatureSpec]) -> None:
    """The rules a list of features obeys together; ValueError naming the feature.

    Names are unique, and a cs_rank's `of` names another feature that is not itself a rank.
    """
    if not features:
        raise ValueError("no features given")
    names = [f.name for f in features]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate feature names: {dupes}")
    by_name = {f.name: f for f in features}
    for f in features:
        if f.kind == "cs_rank":
            of = by_name.get(f.of or "")
            if of is None or of.name == f.name:
                raise ValueError(f"feature '{f.name}': 'of' must name another feature")
            if of.kind == "cs_rank":
                raise ValueError(f"feature '{f.name}': cannot rank a rank")


def check_features(features: Sequence[FeatureSpec]) -> None:
    """Every feature rule, for a list that may not have been validated (built in code, or
    with `model_construct`); ValueError naming the feature.

    A loaded spec has passed all of them: `FeatureSpec` applies `check_feature` and `Spec`
    applies `check_feature_list`.
    """
    for f in features:
        try:
            check_feature(f)
        except ValueError as exc:
            raise ValueError(f"feature '{f.name}': {exc}") from None
    check_feature_list(features)
