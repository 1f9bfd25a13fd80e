"""Service-level objectives from live gateway data: p99 latency and error rate over a window,
and the share of live rows whose inputs were outside the training range (`serving.anomaly`).

Latency comes from the prediction log (every live answer is there with its latency, so any
process can compute it, not only the gateway's own). Errors never reach the prediction log, so
the error rate comes from the gateway's request counter when the gateway runs in this process
(`RequestWindow` turns the cumulative counter into per-window deltas, `RequestsSince` into
counts since a mark such as a rollout phase's start); elsewhere it is unknown, and an unknown
value never fires an alert nor rolls a canary back. `error_rates` is the one division of
errors by requests, for the SLO alerts and the canary analysis alike.

`slo_rules` turns `monitoring.slos` into alert rules, so an SLO breach fires and resolves like
any other alert (named `slo_latency_p99_ms` and `slo_error_rate`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from tradeloop.monitoring.outcomes import read_prediction_log
from tradeloop.spec import AlertRule, SLOSpec

__all__ = [
    "SLO_RULE_PREFIX",
    "RequestWindow",
    "RequestsSince",
    "SloFigures",
    "error_rates",
    "request_counts",
    "slo_figures",
    "slo_rules",
]

SLO_RULE_PREFIX = "slo_"


@dataclass(frozen=True)
class SloFigures:
    """Per variant figures over the window; the alert value is the worst variant's."""

    latency_p99_ms: dict[str, float] = field(default_factory=dict)
    error_rate: dict[str, float] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    out_of_range_share: dict[str, float] = field(default_factory=dict)  # of checked rows

    def values(self) -> dict[str, float | None]:
        return {
            "latency_p99_ms": max(self.latency_p99_ms.values(), default=None),
            "error_rate": max(self.error_rate.values(), default=None),
            "out_of_range_share": max(self.out_of_range_share.values(), default=None),
        }


class RequestWindow:
    """Errors and totals per variant since the previous `take()`, from a gateway's counter.

    `counts` returns cumulative (variant -> (errors, total)); the first `take()` only sets the
    baseline, so a restarted process reports no error rate until one window has passed.
    """

    def __init__(self, counts: Callable[[], dict[str, tuple[float, float]]]) -> None:
        self._counts = counts
        self._last: dict[str, tuple[float, float]] | None = None
        self._lock = threading.Lock()

    def take(self) -> dict[str, tuple[float, float]]:
        now = self._counts()
        with self._lock:
            last, self._last = self._last, now
        if last is None:
            return {}
        return _deltas(now, last)


class RequestsSince:
    """Errors and totals per variant since the first `take(mark)` with this mark.

    The deployer passes its rollout phase (version and start), so a canary step is judged on
    the requests it served, not on the previous step's. The baseline lives in memory: after a
    restart the phase's count starts again from the first look, never from the process start.
    """

    def __init__(self, counts: Callable[[], dict[str, tuple[float, float]]]) -> None:
        self._counts = counts
        self._mark: object = None
        self._base: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, mark: object) -> dict[str, tuple[float, float]]:
        now = self._counts()
        with self._lock:
            if mark != self._mark:
                self._mark, self._base = mark, now
            base = self._base
        return _deltas(now, base)


def _deltas(
    now: dict[str, tuple[float, float]], last: dict[str, tuple[float, float]]
) -> dict[str, tuple[float, float]]:
    out = {}
    for variant, (err, total) in now.items():
        e0, t0 = last.get(variant, (0.0, 0.0))
        if total - t0 > 0:
            out[variant] = (err - e0, total - t0)
    return out


def error_rates(counts: dict[str, tuple[float, float]], min_requests: int = 1) -> dict[str, float]:
    """errors / requests per variant, for variants with at least `min_requests` requests."""
    return {v: err / total for v, (err, total) in counts.items() if total >= min_requests}


def slo_figures(
    predictions_dir: str | Path,
    model: str,
    now: datetime,
    slos: SLOSpec,
    requests: RequestWindow | None = None,
) -> SloFigures:
    """p99 latency of live answers per variant over `slos.window`, and the error rate."""
    log = read_prediction_log(predictions_dir, model=model, since=now - slos.window, modes=["live"])
    latency: dict[str, float] = {}
    counts: dict[str, int] = {}
    if log.height and "latency_ms" in log.columns:
        per_request = log.unique(subset=["request_id", "variant"]).drop_nulls("latency_ms")
        for key, part in per_request.group_by("variant"):
            ms = part["latency_ms"].to_numpy()
            if ms.size:
                latency[str(key[0])] = float(np.percentile(ms, 99))
                counts[str(key[0])] = int(ms.size)
    anomalies: dict[str, float] = {}
    if log.height and "out_of_range" in log.columns:
        for key, part in log.drop_nulls("out_of_range").group_by("variant"):
            if part.height:
                flagged = part["out_of_range"].to_numpy().astype(bool)
                anomalies[str(key[0])] = float(flagged.mean())
    errors = error_rates(requests.take()) if requests is not None else {}
    return SloFigures(latency, errors, counts, anomalies)


def slo_rules(slos: SLOSpec) -> list[AlertRule]:
    """The SLOs as alert rules: breaching for `slos.for` fires; back within it resolves."""
    return [
        AlertRule.model_validate(
            {
                "name": f"{SLO_RULE_PREFIX}latency_p99_ms",
                "metric": "latency_p99_ms",
                "op": ">",
                "value": slos.latency_p99_ms,
                "for": slos.for_,
                "severity": "warning",
            }
        ),
        AlertRule.model_validate(
            {
                "name": f"{SLO_RULE_PREFIX}error_rate",
                "metric": "error_rate",
                "op": ">",
                "value": slos.error_rate,
                "for": slos.for_,
                "severity": "critical",
            }
        ),
    ]


def request_counts(registry: CollectorRegistry, model: str) -> dict[str, tuple[float, float]]:
    """Cumulative (5xx, all) requests per variant of `model`, from a gateway's registry."""
    out: dict[str, tuple[float, float]] = {}
    for family in registry.collect():
        if family.name != "tradeloop_requests":
            continue
        for s in family.samples:
            if not s.name.endswith("_total") or s.labels.get("model") != model:
                continue
            variant = s.labels.get("variant") or ""
            if not variant:  # unmatched routes and refusals before routing
                continue
            err, total = out.get(variant, (0.0, 0.0))
            failed = s.labels.get("status", "").startswith("5")
            out[variant] = (err + (s.value if failed else 0.0), total + s.value)
    return out
