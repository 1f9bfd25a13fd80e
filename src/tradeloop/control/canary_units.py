"""Canary weights that sticky units can express, so a "10%" canary means what it says.

With sticky routing each unit (a symbol, or a header key's value) meets one variant, so the
challenger's share of units moves in steps of 1/n. The router ranks the known units
deterministically (`serving.router.Router(units=...)`) and gives the challenger the top k of
them for a weight w = round(100k/n), so the realized share is k/n exactly.

The rule chosen here is to REFUSE a target the units cannot express, listing the achievable
weights: `validate` refuses canary steps, `deploy --weight` refuses the weight. Rounding
silently (or with a warning that scrolls away) would put an unvetted model on a share nobody
asked for; a refusal makes the owner pick one. With 200 or more units every whole percent is
within 0.25 points of a k/n, so only small unit sets are ever refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from tradeloop.errors import BadInput


@dataclass(frozen=True)
class Split:
    """A weight's realized share of the units: `units` of `total` go to the challenger."""

    target: int
    units: int
    total: int

    @property
    def realized(self) -> float:
        """The challenger's share of units, in percent."""
        return 100.0 * self.units / self.total

    def to_dict(self) -> dict[str, float | int]:
        return {
            "target_pct": self.target,
            "units": self.units,
            "total_units": self.total,
            "realized_pct": round(self.realized, 4),
        }


def challenger_units(units: Sequence[str], weight: int) -> int:
    """How many of `units` the router sends to a challenger at `weight`.

    The router's own rule (`serving.router.unit_buckets`), restated here because `status`
    must not import the serving stack (onnxruntime); tests/control/test_canary_units.py
    holds the two equal.
    """
    ranked = sorted(
        set(units), key=lambda u: (hashlib.blake2b(u.encode(), digest_size=8).digest(), u)
    )
    n = len(ranked)
    return sum((100 * (2 * i + 1)) // (2 * n) >= 100 - weight for i in range(n))


def achievable(total: int) -> list[int]:
    """The whole-percent weights 1..99 that name exactly k of `total` units."""
    if total < 1:
        raise BadInput("a sticky canary needs at least one unit")
    return sorted({round(100 * k / total) for k in range(1, total)} - {0, 100})


def split_for(weight: int, total: int) -> Split | None:
    """The split a weight gives, or None when no k/n is within half a point of it."""
    if not 0 <= weight <= 100:
        raise BadInput(f"weight must be between 0 and 100, got {weight}")
    k = round(weight * total / 100)
    if abs(100 * k / total - weight) > 0.5 or (0 < weight < 100 and k in (0, total)):
        return None
    return Split(weight, k, total)


def check_weight(weight: int, units: Sequence[str], what: str) -> Split:
    """The split for `weight` over `units`, or BadInput listing the weights that exist."""
    total = len(set(units))
    split = split_for(weight, total)
    if split is None:
        choices = achievable(total)
        shown = ", ".join(map(str, choices)) if len(choices) <= 30 else f"{len(choices)} values"
        raise BadInput(
            f"{what}: {weight}% cannot be expressed with {total} sticky unit(s) (each is "
            f"{100 / total:.3g}% of them); achievable weights: {shown or 'none'}"
        )
    return split


def check_steps(weights: Sequence[int], units: Sequence[str]) -> list[Split]:
    """Every canary step's split; BadInput naming the first step that cannot be expressed."""
    return [
        check_weight(w, units, f"deployment.steps[{i}].weight")
        for i, w in enumerate(weights)
        if 0 < w < 100
    ]
