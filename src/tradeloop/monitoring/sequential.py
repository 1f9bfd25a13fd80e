"""Always-valid inference for a difference of means: the Gaussian-mixture confidence sequence.

A fixed-n confidence interval is only valid if you look once. A canary is watched after every
batch, and "stop as soon as it looks significant" with a fixed-n test inflates the false-positive
rate far above alpha. A confidence sequence holds *simultaneously* for every sample size, so the
controller may peek as often as it likes and stop whenever the interval excludes zero.

We use the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas,
"Time-uniform central limit theory and asymptotic confidence sequences" (arXiv:2103.06476v7,
eq. 9 for the half-width, eq. 161 for the mixing parameter, eq. 155 for the p-value), the same
construction as GrowthBook's sequential engine: `sequential_rho`,
`sequential_interval_halfwidth` and `SequentialTwoSidedTTest` in
github.com/growthbook/growthbook, packages/stats/gbstats/frequentist/tests.py (read at commit
8f1db4456915a8e7b7faf23d5632ca7219d2f469). As there, `n` is the combined sample size of both
arms and the per-observation variance is `SE² · n`, where `SE² = var_a/n_a + var_b/n_b`.

Sufficient statistics (count, sum, sum of squares) are what SQL and DuckDB aggregate cheaply
over prediction logs, so a controller can update the analysis without keeping samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from tradeloop.errors import BadInput

# GrowthBook's default `sequential_tuning_parameter`: the combined sample size at which the
# sequence is tightest. It must be fixed before the experiment starts (a data-dependent choice
# voids the guarantee); being off by a factor of a few costs little width.
DEFAULT_PLANNED_SAMPLES = 5000

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ArmStats:
    """Count, sum and sum of squares of one arm's metric: enough for means and variances.

    Immutable: `update` and `merge` return a new value, so a controller that retries a step
    cannot double-count by accident. `to_dict`/`from_dict` round-trip through JSON.
    """

    n: int = 0
    sum: float = 0.0
    sum_sq: float = 0.0

    def __post_init__(self) -> None:
        values = (self.n, self.sum, self.sum_sq)
        if not all(isinstance(v, int | float | np.integer | np.floating) for v in values) or any(
            isinstance(v, bool) for v in values
        ):
            raise BadInput(f"ArmStats fields must be numbers: {self!r}")
        if not float(self.n).is_integer() or self.n < 0:
            raise BadInput(f"ArmStats.n must be a non-negative integer, got {self.n!r}")
        if not (math.isfinite(self.sum) and math.isfinite(self.sum_sq)) or self.sum_sq < 0:
            raise BadInput(f"ArmStats sums must be finite, sum_sq >= 0: {self!r}")
        # Cauchy–Schwarz: n·Σx² >= (Σx)². A violation means corrupted or swapped fields.
        if self.n * self.sum_sq < self.sum**2 * (1 - 1e-9) - 1e-12:
            raise BadInput(f"ArmStats is inconsistent (n·sum_sq < sum²): {self!r}")
        if self.n == 0 and (self.sum != 0 or self.sum_sq != 0):
            raise BadInput(f"ArmStats with n=0 must have zero sums: {self!r}")
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "sum", float(self.sum))
        object.__setattr__(self, "sum_sq", float(self.sum_sq))

    @classmethod
    def from_values(cls, values: npt.ArrayLike | Iterable[float]) -> ArmStats:
        """Statistics of a batch of metric values (finite numbers, any shape)."""
        try:
            x = np.asarray(values, dtype=np.float64).ravel()
        except (TypeError, ValueError) as exc:
            raise BadInput(f"metric values must be numbers: {exc}") from exc
        if not np.isfinite(x).all():
            raise BadInput("metric values must be finite (found NaN or inf)")
        return cls(n=int(x.size), sum=float(x.sum()), sum_sq=float(np.einsum("i,i->", x, x)))

    def update(self, values: npt.ArrayLike | Iterable[float]) -> ArmStats:
        """These statistics plus a new batch of values."""
        return self.merge(ArmStats.from_values(values))

    def merge(self, other: ArmStats) -> ArmStats:
        """Statistics of the union of two disjoint sets of samples."""
        return ArmStats(self.n + other.n, self.sum + other.sum, self.sum_sq + other.sum_sq)

    @property
    def mean(self) -> float | None:
        return self.sum / self.n if self.n else None

    @property
    def variance(self) -> float | None:
        """Unbiased sample variance (ddof=1); None below two samples."""
        if self.n < 2:
            return None
        return max(self.sum_sq - self.sum**2 / self.n, 0.0) / (self.n - 1)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "sum": self.sum, "sum_sq": self.sum_sq}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArmStats:
        if not isinstance(data, dict) or set(data) != {"n", "sum", "sum_sq"}:
            raise BadInput(f"ArmStats needs exactly the keys n, sum, sum_sq: {data!r}")
        return cls(n=data["n"], sum=data["sum"], sum_sq=data["sum_sq"])


class Moments(Protocol):
    """Anything with per-arm `n`, `sum`, `sum_sq`: an ArmStats, or arrays of them (simulation)."""

    @property
    def n(self) -> Any: ...
    @property
    def sum(self) -> Any: ...
    @property
    def sum_sq(self) -> Any: ...


class MomentArrays(NamedTuple):
    """Vectorised counterpart of ArmStats (e.g. one row per simulated experiment)."""

    n: npt.ArrayLike
    sum: npt.ArrayLike
    sum_sq: npt.ArrayLike


class Interval(NamedTuple):
    """Challenger minus champion: estimate, always-valid interval and always-valid p-value."""

    difference: FloatArray
    halfwidth: FloatArray
    lower: FloatArray
    upper: FloatArray
    p_value: FloatArray
    s2: FloatArray  # per-observation variance SE²·n, 0 means no information


def sequential_rho(alpha: float, planned_samples: float = DEFAULT_PLANNED_SAMPLES) -> float:
    """Mixing parameter making the two-sided sequence tightest at `planned_samples` (eq. 161)."""
    if not 0 < alpha < 1:
        raise BadInput(f"alpha must be in (0, 1), got {alpha}")
    if not planned_samples > 0:
        raise BadInput(f"planned_samples must be positive, got {planned_samples}")
    la = -2.0 * math.log(alpha)
    return math.sqrt((la + math.log(la + 1.0)) / planned_samples)


def sequential_halfwidth(
    s2: npt.ArrayLike,
    n: npt.ArrayLike,
    alpha: float,
    planned_samples: float = DEFAULT_PLANNED_SAMPLES,
) -> FloatArray:
    """Half-width of the two-sided always-valid interval (eq. 9).

    `s2` is the per-observation variance (for two arms: SE² times the combined `n`).
    halfwidth = sqrt(s2) · sqrt(2(nρ²+1)/(n²ρ²) · log(sqrt(nρ²+1)/α)).
    """
    rho2 = sequential_rho(alpha, planned_samples) ** 2
    s2a, na = np.asarray(s2, dtype=np.float64), np.asarray(n, dtype=np.float64)
    t = na * rho2 + 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(s2a * 2.0 * t * np.log(np.sqrt(t) / alpha) / (na**2 * rho2))


def anytime_p_value(
    difference: npt.ArrayLike,
    s2: npt.ArrayLike,
    n: npt.ArrayLike,
    alpha: float,
    planned_samples: float = DEFAULT_PLANNED_SAMPLES,
) -> FloatArray:
    """Always-valid p-value for "no difference" (eq. 155): p <= alpha iff 0 is outside the CI.

    It is the reciprocal of the mixture e-value, computed in log space so it never overflows.
    """
    rho2 = sequential_rho(alpha, planned_samples) ** 2
    d, s2a = np.asarray(difference, dtype=np.float64), np.asarray(s2, dtype=np.float64)
    na = np.asarray(n, dtype=np.float64)
    t = na * rho2 + 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z2 = d**2 * na**2 / s2a  # squared z-statistic times n: (d/SE)² · n
        log_e = rho2 * z2 / (2.0 * t) - 0.5 * np.log(t)
        return np.exp(-np.maximum(log_e, 0.0))


def difference_interval(
    champion: Moments,
    challenger: Moments,
    alpha: float,
    planned_samples: float = DEFAULT_PLANNED_SAMPLES,
    binary: bool = False,
) -> Interval:
    """Always-valid interval for mean(challenger) - mean(champion), vectorised over experiments.

    For a binary metric the variance of each arm uses (successes+1)/(n+2): an arm with all hits
    or all misses would otherwise claim zero variance and a zero-width interval. Entries with
    fewer than two samples in an arm come out NaN.
    """
    n_a, s_a, q_a = (np.asarray(v, dtype=np.float64) for v in _moments(champion))
    n_b, s_b, q_b = (np.asarray(v, dtype=np.float64) for v in _moments(challenger))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_a, mean_b = s_a / n_a, s_b / n_b
        if binary:
            p_a, p_b = (s_a + 1) / (n_a + 2), (s_b + 1) / (n_b + 2)
            var_a, var_b = p_a * (1 - p_a), p_b * (1 - p_b)
        else:
            var_a = np.maximum(q_a - s_a**2 / n_a, 0.0) / (n_a - 1)
            var_b = np.maximum(q_b - s_b**2 / n_b, 0.0) / (n_b - 1)
        few = (n_a < 2) | (n_b < 2)
        n = n_a + n_b
        s2 = np.where(few, np.nan, (var_a / n_a + var_b / n_b) * n)
    diff = mean_b - mean_a
    half = sequential_halfwidth(s2, n, alpha, planned_samples)
    p = anytime_p_value(diff, s2, n, alpha, planned_samples)
    return Interval(diff, half, diff - half, diff + half, p, s2)


def _moments(m: Moments) -> tuple[Any, Any, Any]:
    """(n, sum, sum_sq) of an ArmStats or MomentArrays."""
    return m.n, m.sum, m.sum_sq
