"""Quality gates a backtested model must pass before it is registered or promoted.

Absolute gates compare one metric with a fixed threshold (None in the spec: not checked, and
listed in `GateReport.skipped`). The champion gate compares the challenger with the serving
champion on one metric; the comparison only means something when both were backtested on the
same out-of-sample window with the same costs, which the caller arranges. As a guard, when
both metric sets carry `n_bars` and they differ, the gate fails rather than compare unlike
windows. A metric that is missing or not finite fails its gate: nothing passes by default,
except the champion gate when there is no champion yet.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from tradeloop.spec import GatesSpec

Op = Literal[">=", "<="]
_OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}

# (spec field, metric, op): every absolute gate, in report order.
_ABSOLUTE: tuple[tuple[str, str, Op], ...] = (
    ("min_sharpe", "sharpe", ">="),
    ("max_drawdown", "max_drawdown", "<="),
    ("min_hit_rate", "hit_rate", ">="),
    ("min_ic", "ic", ">="),
    ("min_deflated_sharpe", "deflated_sharpe", ">="),
    ("max_pbo", "pbo", "<="),
    ("max_segment_drawdown", "max_segment_drawdown", "<="),
)


@dataclass(frozen=True)
class GateResult:
    name: str
    value: float | None
    threshold: float | None
    op: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class GateReport:
    gates: tuple[GateResult, ...]
    skipped: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "failed": [g.name for g in self.failed],
            "skipped": list(self.skipped),
            "gates": [asdict(g) for g in self.gates],
        }


def _value(metrics: Mapping[str, float], key: str) -> float | None:
    v = metrics.get(key)
    if v is None or isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def _compare(name: str, value: float | None, threshold: float, op: Op, what: str) -> GateResult:
    if value is None:
        return GateResult(name, None, threshold, op, False, f"{what} is missing or not finite")
    # Inclusive, and a tie up to float noise is a tie: 1.1 + 0.1 must not beat 1.2.
    ok = _OPS[op](value, threshold) or math.isclose(value, threshold, rel_tol=1e-9, abs_tol=1e-12)
    verdict = "passes" if ok else "fails"
    reason = f"{what} {value:.6g} {verdict} {op} {threshold:.6g}"
    return GateResult(name, value, threshold, op, ok, reason)


def _champion_gate(
    metrics: Mapping[str, float], champion: Mapping[str, float] | None, metric: str, margin: float
) -> GateResult:
    name = f"champion_{metric}"
    value = _value(metrics, metric)
    if champion is None:
        return GateResult(name, value, None, ">=", True, "no champion")
    ours, theirs = metrics.get("n_bars"), champion.get("n_bars")
    if ours is not None and theirs is not None and ours != theirs:
        return GateResult(
            name,
            value,
            None,
            ">=",
            False,
            f"champion was backtested on {theirs:g} bars, challenger on {ours:g}: "
            "not the same window",
        )
    champ = _value(champion, metric)
    if champ is None:
        return GateResult(
            name, value, None, ">=", False, f"champion's {metric} is missing or not finite"
        )
    gate = _compare(name, value, champ + margin, ">=", f"challenger {metric}")
    return GateResult(
        gate.name,
        gate.value,
        gate.threshold,
        gate.op,
        gate.passed,
        f"{gate.reason} (champion {champ:.6g} + margin {margin:g})",
    )


def evaluate_gates(
    metrics: Mapping[str, float],
    spec: GatesSpec,
    champion_metrics: Mapping[str, float] | None = None,
) -> GateReport:
    """Check `metrics` (a backtest's) against `spec`, and against the champion's, if any."""
    gates: list[GateResult] = []
    skipped: list[str] = []
    for field, metric, op in _ABSOLUTE:
        threshold = getattr(spec, field)
        if threshold is None:
            skipped.append(field)
            continue
        gates.append(_compare(field, _value(metrics, metric), float(threshold), op, metric))
    if spec.champion is None:
        skipped.append("champion")
    else:
        gates.append(
            _champion_gate(metrics, champion_metrics, spec.champion.metric, spec.champion.margin)
        )
    return GateReport(tuple(gates), tuple(skipped))
