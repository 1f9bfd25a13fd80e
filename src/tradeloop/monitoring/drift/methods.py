"""Drift methods: a plug-in family of column tests, a registry by name, and the default choice.

Every built-in statistic is the one Evidently's `DataDriftPreset` reports (`evidently.legacy.
calculations.stattests`), so a tradeloop report and an Evidently report on the same data agree:

- `ks`: two-sample Kolmogorov-Smirnov p-value (scipy `ks_2samp`, method 'auto': exact when both
  samples have <= 10,000 values, else `kstwo.sf(D, round(n*m/(n+m)))`); drift when p <= 0.05.
- `wasserstein`: Wasserstein-1 distance / max(std(reference, ddof=0), 0.001); drift when >= 0.1.
- `psi`, `jensenshannon`: of binned shares (`stattests`); drift when >= 0.1.
- `chisquare`: chi-square test of homogeneity, p-value; drift when p < 0.05 (why it differs from
  Evidently's: `stattests`).
- `z`: two-proportion z-test for binary columns (auto-selected only); drift when p < 0.05.

Binning for PSI and Jensen-Shannon (Evidently's `get_binned_data`): a numeric column whose
reference has more than 20 distinct values is cut into Sturges bins over both samples together
(`profiles.binned_shares`; Evidently's `n_bins` is ignored on that path); any other column gets
one bin per distinct value of either sample.

A method is a `DriftTest`: it declares its statistic (a p-value, drift when small, or a distance,
drift when large), whether equality with the threshold is drift, and the column kinds a spec may
request it for; it computes from a numeric profile and sample (`on_numeric`) and from counts over
shared categories (`on_counts`). `register_drift_method` adds one; `conformance.check_drift_method`
is the suite every method passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, Literal

import numpy as np

from tradeloop.errors import BadInput
from tradeloop.monitoring.drift.columns import ColumnKind
from tradeloop.monitoring.drift.distances import (
    ks_pvalue,
    ks_pvalue_asymptotic,
    ks_statistic_sketch,
    normed_wasserstein,
    wasserstein,
    wasserstein_sketch,
)
from tradeloop.monitoring.drift.profiles import NumericProfile, binned_shares, per_value_counts
from tradeloop.monitoring.drift.samples import Sample
from tradeloop.monitoring.drift.stattests import chisquare_pvalue, jensenshannon, psi, z_pvalue

__all__ = [
    "DISCRETE_BINS_MAX_UNIQUE",
    "FEW_VALUES",
    "METHODS",
    "SMALL_REFERENCE",
    "DriftTest",
    "default_method",
    "drift_method",
    "register_drift_method",
]

StatisticKind = Literal["p_value", "distance"]

DISCRETE_BINS_MAX_UNIQUE = 20  # numeric columns with more distinct values get Sturges bins
SMALL_REFERENCE = 1000  # Evidently's default-method switch on the reference's size
FEW_VALUES = 5  # numeric columns with at most this many values are tested as categories

_NUMERIC: frozenset[ColumnKind] = frozenset({"numeric"})
_CATEGORICAL: frozenset[ColumnKind] = frozenset({"categorical"})
_BOTH: frozenset[ColumnKind] = _NUMERIC | _CATEGORICAL


class DriftTest:
    """A drift method. Subclasses set the class attributes and override what they compute.

    `on_numeric` gets an exact or sketched reference profile and the current sorted sample, both
    non-empty and finite, and returns (statistic, exact); by default it tests per-value counts,
    which is how the default choice tests numeric columns with few values. `on_counts` gets
    counts over the same categories, each category present in one sample at least.
    """

    name: ClassVar[str]
    display_name: ClassVar[str]  # Evidently's display name, so the two reports line up
    statistic: ClassVar[StatisticKind]
    default_threshold: ClassVar[float]
    drift_at_threshold: ClassVar[bool]  # is statistic == threshold drift?
    kinds: ClassVar[frozenset[ColumnKind]]  # the column kinds a spec may request it for
    selectable: ClassVar[bool] = True  # False: chosen by `default_method` only

    def is_drift(self, statistic: float, threshold: float) -> bool:
        """p-values drift below the threshold, distances above it."""
        if statistic == threshold:
            return self.drift_at_threshold
        return statistic < threshold if self.statistic == "p_value" else statistic > threshold

    def on_numeric(self, reference: NumericProfile, current: Sample) -> tuple[float, bool]:
        r, c = per_value_counts(reference, current)
        return self.on_counts(r, c), True

    def on_counts(self, reference: np.ndarray, current: np.ndarray) -> float:
        raise BadInput(f"drift method {self.name!r} needs numeric values")


class KolmogorovSmirnov(DriftTest):
    name = "ks"
    display_name = "K-S p_value"
    statistic = "p_value"
    default_threshold = 0.05
    drift_at_threshold = True  # Evidently: p <= threshold
    kinds = _NUMERIC

    def on_numeric(self, reference: NumericProfile, current: Sample) -> tuple[float, bool]:
        if reference.sample is not None:
            return ks_pvalue(reference.sample, current), True
        assert reference.sketch is not None  # a NumericProfile holds one of the two
        d = ks_statistic_sketch(reference.sketch, current)
        return ks_pvalue_asymptotic(d, reference.n, current.n), False


class Wasserstein(DriftTest):
    name = "wasserstein"
    display_name = "Wasserstein distance (normed)"
    statistic = "distance"
    default_threshold = 0.1
    drift_at_threshold = True
    kinds = _NUMERIC

    def on_numeric(self, reference: NumericProfile, current: Sample) -> tuple[float, bool]:
        if reference.sample is not None:
            return normed_wasserstein(wasserstein(reference.sample, current), reference.std), True
        assert reference.sketch is not None  # a NumericProfile holds one of the two
        w = wasserstein_sketch(reference.sketch, current)
        return normed_wasserstein(w, reference.std), False


class _SharesTest(DriftTest):
    """A distance of two distributions' shares: Sturges bins for many-valued numeric columns."""

    statistic = "distance"
    default_threshold = 0.1
    drift_at_threshold = True
    kinds = _BOTH

    def on_shares(self, reference: np.ndarray, current: np.ndarray) -> float:
        raise NotImplementedError

    def on_numeric(self, reference: NumericProfile, current: Sample) -> tuple[float, bool]:
        if reference.nunique > DISCRETE_BINS_MAX_UNIQUE:
            r, c, exact = binned_shares(reference, current)
            return self.on_shares(r, c), exact
        return DriftTest.on_numeric(self, reference, current)

    def on_counts(self, reference: np.ndarray, current: np.ndarray) -> float:
        return self.on_shares(reference / reference.sum(), current / current.sum())


class PopulationStabilityIndex(_SharesTest):
    name = "psi"
    display_name = "PSI"

    def on_shares(self, reference: np.ndarray, current: np.ndarray) -> float:
        return psi(reference, current)


class JensenShannon(_SharesTest):
    name = "jensenshannon"
    display_name = "Jensen-Shannon distance"

    def on_shares(self, reference: np.ndarray, current: np.ndarray) -> float:
        return jensenshannon(reference, current)


class ChiSquare(DriftTest):
    name = "chisquare"
    display_name = "chi-square p_value"
    statistic = "p_value"
    default_threshold = 0.05
    drift_at_threshold = False
    kinds = _CATEGORICAL

    def on_counts(self, reference: np.ndarray, current: np.ndarray) -> float:
        return chisquare_pvalue(reference, current)


class ZTest(DriftTest):
    name = "z"
    display_name = "Z-test p_value"
    statistic = "p_value"
    default_threshold = 0.05
    drift_at_threshold = False
    kinds = _CATEGORICAL
    selectable = False

    def on_counts(self, reference: np.ndarray, current: np.ndarray) -> float:
        return z_pvalue(reference, current)


_REGISTRY: dict[str, DriftTest] = {}
METHODS: Mapping[str, DriftTest] = MappingProxyType(_REGISTRY)  # read-only view, by name


def register_drift_method(method: DriftTest, *, replace: bool = False) -> DriftTest:
    """Make `method` known by its name; a second method of the same name needs `replace`."""
    if not replace and method.name in _REGISTRY:
        raise BadInput(f"drift method {method.name!r} is already registered")
    _REGISTRY[method.name] = method
    return method


def drift_method(name: str) -> DriftTest:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BadInput(
            f"unknown drift method {name!r} (known: {', '.join(sorted(_REGISTRY))})"
        ) from None


for _builtin in (
    KolmogorovSmirnov(),
    Wasserstein(),
    PopulationStabilityIndex(),
    JensenShannon(),
    ChiSquare(),
    ZTest(),
):
    register_drift_method(_builtin)


def default_method(kind: ColumnKind, n_reference: int, n_values: int) -> str:
    """Evidently's `_get_default_stattest`: by column kind, reference size and distinct values.

    `n_values` counts distinct values of reference and current together.
    """
    if n_reference <= SMALL_REFERENCE:
        if kind == "numeric" and n_values > FEW_VALUES:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == "numeric" and n_values > FEW_VALUES:
        return "wasserstein"
    return "jensenshannon"
