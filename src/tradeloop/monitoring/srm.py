"""Sample-ratio mismatch: are the arms getting the traffic split the router was told to give?

If a 50/50 split arrives as 55/45, something between the router and the outcome log is dropping
or duplicating one arm's samples (crashes, timeouts, a filter that depends on the model), and
the dropped samples are rarely random. The comparison of means is then untrustworthy whatever
its p-value, so an SRM blocks any decision. The threshold is 0.001, as GrowthBook and most
platforms use: the check runs at every peek, so it must be strict to avoid false alarms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

from tradeloop.errors import BadInput

SRM_THRESHOLD = 0.001
MIN_EXPECTED = 5.0  # below this expected count per arm the chi-square approximation is poor


@dataclass(frozen=True, slots=True)
class SRMResult:
    """The chi-square goodness-of-fit test of observed counts against intended weights.

    `p_value` is None when the test is not yet meaningful (some expected count below 5).
    """

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float | None
    p_value: float | None
    mismatch: bool


def normalize_weights(weights: Sequence[float], arms: int) -> tuple[float, ...]:
    """Weights as shares summing to 1 (90/10 and 0.9/0.1 mean the same)."""
    if len(weights) != arms:
        raise BadInput(f"need {arms} intended weights, got {len(weights)}: {list(weights)}")
    w = tuple(float(x) for x in weights)
    if not all(math.isfinite(x) and x >= 0 for x in w) or sum(w) <= 0:
        raise BadInput(f"intended weights must be non-negative and not all zero: {list(w)}")
    total = sum(w)
    return tuple(x / total for x in w)


def srm_check(
    counts: Sequence[int], weights: Sequence[float], threshold: float = SRM_THRESHOLD
) -> SRMResult:
    """Chi-square test of per-arm counts against intended weights; mismatch if p < threshold."""
    if any(isinstance(c, bool) or int(c) != c or c < 0 for c in counts):
        raise BadInput(f"counts must be non-negative integers: {list(counts)}")
    observed = tuple(int(c) for c in counts)
    shares = normalize_weights(weights, len(observed))
    total = sum(observed)
    expected = tuple(total * s for s in shares)
    if any(e == 0 and o > 0 for e, o in zip(expected, observed, strict=True)):
        # traffic reached an arm that should get none: a mismatch whatever the numbers
        return SRMResult(observed, expected, math.inf, 0.0, True)
    live = [(o, e) for o, e in zip(observed, expected, strict=True) if e > 0]
    if len(live) < 2 or any(e < MIN_EXPECTED for _, e in live):
        return SRMResult(observed, expected, None, None, False)
    statistic, p_value = stats.chisquare([o for o, _ in live], [e for _, e in live])
    p = float(p_value)
    return SRMResult(observed, expected, float(statistic), p, p < threshold)
