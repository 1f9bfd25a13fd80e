"""The alert state machine, pure: a rule, the alert's current state, a value and a time in; the
next state out. No database and no clock here: `alerts.AlertEngine` applies the steps to the
store (`store.alerts`) and announces them (`routes`).

    inactive ──(condition true)──► pending ──(true for >= `for`)──► firing
        ▲                            │                                  │
        └────(condition false)───────┘            (condition false) ──► resolved

`for: 0` fires on the first true evaluation. A pending alert whose condition turns false goes
back to inactive silently, as in Prometheus. No data (a value of None or NaN) leaves the state as
it is: an inactive alert stays inactive, a pending one neither fires nor clears (its `for` clock
keeps running), a firing one keeps firing until data says it is over.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from tradeloop.spec import AlertRule, format_duration
from tradeloop.store.alerts import AlertRecord, AlertState

__all__ = [
    "MetricValues",
    "Step",
    "Transition",
    "annotate",
    "closed_state",
    "fingerprint",
    "metric_value",
    "next_step",
    "transition",
]

MetricValues = Mapping[str, "float | Mapping[str, float | None] | None"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    """sha256 hex of the rule name and its identifying labels (order-independent)."""
    body = json.dumps({"alertname": rule, **labels}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def metric_value(rule: AlertRule, values: MetricValues) -> float | None:
    """The rule's current value, None for no data.

    `feature_drift` reads `values["feature_drift:<feature>"]`, or `values["feature_drift"]` as a
    mapping of feature -> value (the convention of `report.alert_values`: 1.0 when the
    feature's drift test says drifted, else 0.0).
    """
    raw: Any
    if rule.metric == "feature_drift":
        raw = values.get(f"feature_drift:{rule.feature}")
        if raw is None:
            per = values.get("feature_drift")
            raw = per.get(rule.feature) if isinstance(per, Mapping) and rule.feature else None
    else:
        raw = values.get(rule.metric)
    if raw is None or isinstance(raw, Mapping):
        return None
    try:
        v = float(raw)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class Step:
    """What one evaluation does to one alert's open row.

    keep: nothing (no row, and none needed); touch: record the evaluation time only (no data);
    update: record the value, state unchanged; open: a new row in `state`; fire: pending
    becomes firing; close: the row ends in `state` (resolved or inactive).
    """

    action: Literal["keep", "touch", "update", "open", "fire", "close"]
    state: AlertState | None = None


def closed_state(state: AlertState) -> AlertState:
    """How an open alert ends: a firing one resolves, a pending one was never an alert."""
    return "resolved" if state == "firing" else "inactive"


def next_step(rule: AlertRule, row: AlertRecord | None, value: float | None, now: datetime) -> Step:
    """The transition of the module docstring for the alert's open row (None: inactive)."""
    if value is None:
        return Step("touch") if row is not None else Step("keep")
    breached = _OPS[rule.op](value, rule.value)
    if row is None:
        if not breached:
            return Step("keep")
        return Step("open", "firing" if rule.for_.total_seconds() <= 0 else "pending")
    if breached:
        if row.state == "pending" and now - row.started_at >= rule.for_:
            return Step("fire", "firing")
        return Step("update")
    return Step("close", closed_state(row.state))


@dataclass(frozen=True)
class Transition:
    """One alert's change of state in one evaluation."""

    rule: str
    fingerprint: str
    previous: AlertState
    state: AlertState
    value: float | None
    at: datetime
    severity: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    started_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    alert_id: int

    @property
    def notifies(self) -> bool:
        """Firing and resolving are announced (routes, audit); pending/inactive moves are not."""
        return self.state in ("firing", "resolved")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"], d["annotations"] = dict(self.labels), dict(self.annotations)
        for k in ("at", "started_at", "fired_at", "resolved_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d


def describe(rule: AlertRule) -> str:
    metric = f"{rule.metric}[{rule.feature}]" if rule.feature else rule.metric
    wait = f" for {format_duration(rule.for_)}" if rule.for_.total_seconds() > 0 else ""
    return f"{metric} {rule.op} {rule.value:g}{wait}"


def annotate(rule: AlertRule, state: AlertState, value: float | None) -> dict[str, str]:
    """The summary and description sent with a transition of `rule` into `state`."""
    what = describe(rule)
    v = "no data" if value is None else f"{value:.6g}"
    if state == "resolved":
        summary = f"{rule.metric} is {v}, no longer {rule.op} {rule.value:g}"
    else:
        summary = f"{rule.metric} is {v} ({what})"
    if rule.feature:
        summary = f"{rule.feature}: {summary}"
    return {"summary": summary, "description": f"tradeloop alert {rule.name}: {what}"}


def transition(
    rec: AlertRecord,
    previous: AlertState,
    now: datetime,
    severity: str,
    notes: Mapping[str, str],
) -> Transition:
    """The transition that left the row `rec` as it is now; `notes` are its annotations."""
    return Transition(
        rule=rec.rule,
        fingerprint=rec.fingerprint,
        previous=previous,
        state=rec.state,
        value=rec.value,
        at=now,
        severity=severity,
        labels=dict(rec.labels),
        annotations=dict(notes),
        started_at=rec.started_at,
        fired_at=rec.fired_at,
        resolved_at=rec.resolved_at,
        alert_id=rec.id,
    )
