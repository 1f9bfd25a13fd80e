"""Input anomalies: each scored row's features against the reference profile of its model.

Training stores a reference profile with every version (`reference_profile.json`: per feature
its min, max, std and quantiles). A feature value beyond the training range is an anomaly, and
how far beyond is measured in the feature's reference standard deviations, so one number
means the same for a return and for an RSI. `ret_1 = 1e9` is some 1e11 std past the range.

Every row is flagged (`out_of_range` in the prediction log, and counted in
`tradeloop_input_rows_total` / `tradeloop_input_out_of_range_total`). With
`deployment.serving.refuse_beyond` set, a row further than that many std devs away is refused
with a 422 naming the row and the feature, before it is scored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PROFILE_FILE", "FeatureBounds", "read_profile"]

PROFILE_FILE = "reference_profile.json"


def read_profile(path: Path) -> dict[str, Any] | None:
    """The profile beside a model, or None when there is none (an older or foreign model)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("columns"), dict) else None


@dataclass(frozen=True)
class FeatureBounds:
    names: tuple[str, ...]
    lo: np.ndarray  # [F] float32
    hi: np.ndarray
    scale: np.ndarray  # [F] the reference std (or range), never 0

    @classmethod
    def from_profile(
        cls, profile: Mapping[str, Any] | None, names: Sequence[str]
    ) -> FeatureBounds | None:
        """Bounds for `names` in model order; a feature the profile lacks is unbounded."""
        if not profile:
            return None
        cols = profile.get("columns", {})
        lo, hi, scale = [], [], []
        for n in names:
            c = cols.get(n)
            if not isinstance(c, Mapping) or c.get("type") != "numeric":
                lo.append(-np.inf)
                hi.append(np.inf)
                scale.append(1.0)
                continue
            a, b, s = float(c["min"]), float(c["max"]), float(c.get("std") or 0.0)
            lo.append(a)
            hi.append(b)
            scale.append(s if s > 0 else (b - a if b > a else 1.0))
        if all(np.isinf(x) for x in lo):
            return None
        f = np.float32
        return cls(tuple(names), np.array(lo, f), np.array(hi, f), np.array(scale, np.float64))

    def outside(self, x: np.ndarray) -> np.ndarray | None:
        """[N] whether any of a row's values lies outside the range (NaN does not), or None
        when none does: the common case, settled in two comparisons and a byte scan of the
        boolean mask (one row of 9: 3.4 us, where `distance` and a max took 12 us and
        `mask.any()` alone 1.4 us of it, the same loaded machine)."""
        bad: np.ndarray = x < self.lo
        bad |= x > self.hi
        if b"\x01" not in bad.tobytes():
            return None
        return np.asarray(bad.any(axis=1))

    def distance(self, x: np.ndarray) -> np.ndarray:
        """[N, F] how many reference std devs each value lies outside the range (0 inside;
        a missing value, NaN, is not an anomaly here)."""
        over = np.maximum(x - self.hi, self.lo - x).astype(np.float64)
        d: np.ndarray = np.maximum(over, 0.0) / self.scale
        d[np.isnan(d)] = 0.0
        return d

    def describe(self, d: np.ndarray, limit: float, max_items: int = 5) -> str:
        """What a refusal says: the rows and features beyond `limit`, worst first."""
        rows, cols = np.nonzero(d > limit)
        order = np.argsort(-d[rows, cols])[:max_items]
        parts = [
            f"row {int(rows[i])} {self.names[int(cols[i])]} is {d[rows[i], cols[i]]:.3g} std "
            f"outside [{self.lo[cols[i]]:.6g}, {self.hi[cols[i]]:.6g}]"
            for i in order
        ]
        more = len(rows) - len(order)
        tail = f" (and {more} more)" if more > 0 else ""
        return (
            f"input beyond {limit:g} reference std devs of the training range: "
            + "; ".join(parts)
            + tail
        )
