"""Champion-vs-challenger statistics: the verdict a canary or A/B rollout acts on.

`analyze` turns both arms' outcomes into one of four decisions:

- `continue`: keep collecting (too little data, or the interval still straddles zero);
- `promote`: the challenger is better, the always-valid interval lies entirely on the good side;
- `rollback`: the challenger is worse, the interval lies entirely on the bad side;
- `inconclusive`: stop without a winner (the split is broken, or the budget ran out).

The interval is a confidence sequence (see `tradeloop.monitoring.sequential`), so the
controller may call `analyze` after every batch: the chance of *ever* promoting or rolling back
when the models are equally good stays at most alpha. A fixed-n t-test checked the same way
does not (tests/monitoring/test_experiment.py measures both).

Assumptions a caller must keep: samples are independent (randomise per request or per
symbol-bar, not per long-lived key, or the variance is understated); the planned sample size
is fixed before the first look; and when the intended weights change (a new canary step) the
arms should be restarted with fresh statistics, or periods with different splits get mixed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy.typing as npt

from tradeloop.errors import BadInput
from tradeloop.monitoring.sequential import (
    DEFAULT_PLANNED_SAMPLES,
    ArmStats,
    difference_interval,
    sequential_rho,
)
from tradeloop.monitoring.srm import SRM_THRESHOLD, normalize_weights, srm_check
from tradeloop.spec import AnalysisSpec

__all__ = ["ArmData", "ArmStats", "Decision", "Metric", "Verdict", "analyze"]

Decision = Literal["promote", "rollback", "continue", "inconclusive"]
Metric = Literal["hit_rate", "pnl"]
ArmData = ArmStats | npt.ArrayLike | Iterable[float]  # one arm: its summary, or its values

_MIN_PER_ARM = 2  # a variance needs two samples, whatever the spec says


@dataclass(frozen=True, slots=True)
class Verdict:
    """A decision and the numbers behind it. `difference` and the CI are challenger - champion
    in the metric's own units, whatever the direction of "better"."""

    decision: Decision
    reason: str
    metric: Metric
    n_champion: int
    n_challenger: int
    mean_champion: float | None
    mean_challenger: float | None
    difference: float | None
    ci_lower: float | None
    ci_upper: float | None
    p_value: float | None  # always-valid, for "no difference"
    alpha: float
    srm_p_value: float | None  # the smaller of the two checks below that ran
    min_samples: int
    higher_is_better: bool
    margin: float
    planned_samples: float
    final: bool
    srm_requests_p_value: float | None = None  # scored requests per arm vs the split
    srm_units_p_value: float | None = None  # sticky units per arm vs the split
    requests: tuple[int, int] = (0, 0)  # scored requests (champion, challenger): realized share

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values (no NaN: missing numbers are None)."""
        return asdict(self)


def analyze(
    champion: ArmData,
    challenger: ArmData,
    spec: AnalysisSpec,
    intended_weights: tuple[float, float] = (0.5, 0.5),
    metric: Metric | None = None,
    higher_is_better: bool = True,
    *,
    final: bool = False,
    max_samples: int | None = None,
    planned_samples: float | None = None,
    margin: float = 0.0,
    srm_units: tuple[int, int] | None = None,
    srm_requests: tuple[int, int] | None = None,
) -> Verdict:
    """Judge the challenger against the champion.

    champion, challenger: raw metric values (`hit_rate`: 0/1 per prediction; `pnl`: PnL per
        prediction) or their `ArmStats`.
    spec: alpha and the per-arm minimum sample; `metric` defaults to `spec.metric`.
    intended_weights: the router's split (champion, challenger), e.g. (90, 10) for a canary.
    final / max_samples: the budget is spent (explicitly, or once both arms have `max_samples`),
        so an interval that still contains the threshold gives `inconclusive`, not `continue`.
    planned_samples: combined sample size where the interval is tightest; fixed in advance.
        Defaults to 2 * max_samples, else GrowthBook's 5000.
    srm_units: units assigned to each arm (champion, challenger) when assignment is sticky by
        a key: the unit that was randomized. Checked against the split as well as requests.
    srm_requests: scored requests per arm, when the arms passed are not raw draws (per-bar
        aggregates); defaults to the arms' sample counts. Both checks run and either one's
        mismatch blocks a decision: lost units and lost requests are different failures.
    margin: non-inferiority margin (>= 0, metric units). 0 tests superiority; with m > 0 the
        challenger is promoted once it is confidently no worse than m, rolled back once it is
        confidently worse than m.
    """
    metric = spec.metric if metric is None else metric
    if metric not in ("hit_rate", "pnl"):
        raise BadInput(f"metric must be 'hit_rate' or 'pnl', got {metric!r}")
    if not (math.isfinite(margin) and margin >= 0):
        raise BadInput(f"margin must be a finite number >= 0, got {margin}")
    min_samples = max(spec.min_samples, _MIN_PER_ARM)
    if max_samples is not None and max_samples < min_samples:
        raise BadInput(f"max_samples ({max_samples}) is below min_samples ({min_samples})")
    if planned_samples is None:
        planned_samples = 2 * max_samples if max_samples is not None else DEFAULT_PLANNED_SAMPLES
    sequential_rho(spec.alpha, planned_samples)  # validates alpha and planned_samples
    shares = normalize_weights(intended_weights, 2)
    if min(shares) == 0:
        raise BadInput(f"both arms need a positive intended weight: {intended_weights}")

    a, b = _as_stats(champion, "champion"), _as_stats(challenger, "challenger")
    if metric == "hit_rate":
        _check_binary(a, "champion")
        _check_binary(b, "challenger")
    exhausted = final or (max_samples is not None and min(a.n, b.n) >= max_samples)
    srm_r = srm_check(srm_requests if srm_requests is not None else (a.n, b.n), shares)
    srm_u = srm_check(srm_units, shares) if srm_units is not None else None
    ran = [x.p_value for x in (srm_r, srm_u) if x is not None and x.p_value is not None]

    diff = lower = upper = p = None
    no_variance = False
    if min(a.n, b.n) >= _MIN_PER_ARM:
        iv = difference_interval(a, b, spec.alpha, planned_samples, binary=metric == "hit_rate")
        no_variance = not float(iv.s2) > 0
        diff = float(iv.difference)
        if not no_variance:
            lower, upper, p = float(iv.lower), float(iv.upper), float(iv.p_value)

    def verdict(decision: Decision, reason: str) -> Verdict:
        return Verdict(
            decision=decision,
            reason=reason,
            metric=metric,
            n_champion=a.n,
            n_challenger=b.n,
            mean_champion=a.mean,
            mean_challenger=b.mean,
            difference=diff,
            ci_lower=lower,
            ci_upper=upper,
            p_value=p,
            alpha=spec.alpha,
            srm_p_value=min(ran) if ran else None,
            srm_requests_p_value=srm_r.p_value,
            srm_units_p_value=srm_u.p_value if srm_u is not None else None,
            requests=(srm_r.observed[0], srm_r.observed[1]),
            min_samples=min_samples,
            higher_is_better=higher_is_better,
            margin=margin,
            planned_samples=float(planned_samples),
            final=exhausted,
        )

    stop: Decision = "inconclusive" if exhausted else "continue"
    # A broken split is checked first: it is detectable early and waiting would hide it.
    for what, srm in (("requests", srm_r), ("units", srm_u)):
        if srm is not None and srm.mismatch:
            seen = "/".join(str(o) for o in srm.observed)
            return verdict(
                "inconclusive",
                f"sample ratio mismatch on {what}: observed {seen}, intended "
                f"{shares[0]:.3g}/{shares[1]:.3g} (p={srm.p_value:.3g} < {SRM_THRESHOLD}); "
                "the data is untrustworthy, find what drops or duplicates samples",
            )
    if min(a.n, b.n) < min_samples:
        budget = "budget exhausted with " if exhausted else ""
        return verdict(
            stop,
            f"{budget}too few samples: need {min_samples} per arm, have champion {a.n}, "
            f"challenger {b.n}",
        )
    if no_variance or lower is None or upper is None:
        return verdict(stop, "the metric has no variance in either arm; nothing to compare")

    # Work in "improvement" units: positive means the challenger is better.
    sign = 1.0 if higher_is_better else -1.0
    gain_lo, gain_hi = sorted((sign * lower, sign * upper))
    ci = f"{1 - spec.alpha:.0%} CI [{lower:.4g}, {upper:.4g}] for challenger - champion"
    bound = f"-{margin:.4g} (non-inferiority margin)" if margin else "0"
    if gain_lo > -margin:
        return verdict(
            "promote", f"challenger better: {ci} is entirely on the good side of {bound}"
        )
    if gain_hi < -margin:
        return verdict("rollback", f"challenger worse: {ci} is entirely on the bad side of {bound}")
    if exhausted:
        return verdict("inconclusive", f"budget exhausted and {ci} still contains {bound}")
    return verdict("continue", f"{ci} contains {bound}; keep collecting")


def _as_stats(samples: ArmData, arm: str) -> ArmStats:
    if isinstance(samples, ArmStats):
        return samples
    try:
        return ArmStats.from_values(samples)
    except BadInput as exc:
        raise BadInput(f"{arm}: {exc}") from exc


def _check_binary(s: ArmStats, arm: str) -> None:
    """0/1 values are exactly those with x² = x, so sum_sq == sum and 0 <= sum <= n."""
    if abs(s.sum_sq - s.sum) > 1e-6 * max(1.0, s.n) or not -1e-9 <= s.sum <= s.n + 1e-9:
        raise BadInput(f"{arm}: hit_rate values must be 0 or 1 (one per prediction)")
