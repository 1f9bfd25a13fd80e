"""Prometheus metrics of the monitor: drift, live performance, alert states, webhook delivery.

Everything goes into an injected `CollectorRegistry` (no process-wide globals, like the
gateway's metrics), so one process can serve both on `/metrics` and tests stay isolated.

Drift series carry a `variant` label (champion, challenger: a bounded set, the deployer's two
roles): each variant's own inputs against its version's reference profile. The challenger's
are its canary rows or, while it is in shadow, its copies of live requests.

A metric that has no value now (a version with no graded predictions yet, a feature the last
drift run skipped) has its series *removed*, not set to 0 or NaN: Prometheus rules then see no
data, and no data is not a reason to alert (the same rule the alert engine follows).
`deploy/prometheus/rules.yml` and the Grafana dashboards use these names.
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from tradeloop.monitoring.performance import PerformanceMetrics
from tradeloop.monitoring.report import alert_values
from tradeloop.monitoring.routes import Notifier
from tradeloop.monitoring.slo import SloFigures
from tradeloop.spec import AlertRule
from tradeloop.store.alerts import AlertRecord

__all__ = ["METRIC_NAMES", "MonitorGauges"]

_PERF = {
    # name suffix: (PerformanceMetrics field, help)
    "hit_rate": ("hit_rate", "Share of graded predictions holding a position that were right."),
    "ic": ("ic", "Spearman information coefficient of prediction vs realized forward return."),
    "sharpe": ("sharpe", "Sharpe ratio of paper PnL over the window (annualized if configured)."),
    "pnl_mean": ("pnl_mean", "Mean paper PnL per graded prediction, net of costs."),
    "pnl_total": ("pnl_total", "Sum of paper PnL over the window, net of costs."),
    "calibration_error": ("ece", "Expected calibration error of P(up) (classification)."),
    "graded": ("n", "Predictions with known outcomes in the window."),
    "pending": ("pending", "Predictions whose outcome is not known yet."),
}

# Every series name this module exports (the dashboard/rules consistency test reads it).
METRIC_NAMES: tuple[str, ...] = (
    "tradeloop_drift_statistic",
    "tradeloop_drift_threshold",
    "tradeloop_drift_detected",
    "tradeloop_drift_share",
    "tradeloop_dataset_drift",
    *(f"tradeloop_perf_{k}" for k in _PERF),
    "tradeloop_alert_firing",
    "tradeloop_alert_pending",
    "tradeloop_alert_notifications_total",
    "tradeloop_alert_notification_attempts_total",
    "tradeloop_monitor_last_evaluation_timestamp_seconds",
    "tradeloop_slo_latency_p99_ms",
    "tradeloop_slo_error_rate",
    "tradeloop_input_out_of_range_share",
)


class _NotifierCollector(Collector):
    """Webhook delivery counters, read from the notifiers at scrape time (one per pipeline's
    monitor, keyed by model; a route's counters are summed over them)."""

    def __init__(self) -> None:
        self.notifiers: dict[str, Notifier] = {}

    def collect(self) -> Iterator[Metric]:
        stats: dict[str, Any] = {}
        for notifier in list(self.notifiers.values()):
            for route, st in notifier.stats().items():
                stats.setdefault(route, []).append(st)
        results = CounterMetricFamily(
            "tradeloop_alert_notifications",
            "Alert notifications by webhook route and result (sent, failed, dropped).",
            labels=("route", "result"),
        )
        attempts = CounterMetricFamily(
            "tradeloop_alert_notification_attempts",
            "HTTP requests made to deliver alert notifications.",
            labels=("route",),
        )
        for route, sts in sorted(stats.items()):
            for result in ("sent", "failed", "dropped"):
                results.add_metric((route, result), float(sum(getattr(s, result) for s in sts)))
            attempts.add_metric((route,), float(sum(s.attempts for s in sts)))
        yield results
        yield attempts


class MonitorGauges:
    """The monitor's gauges. Call the setters after each monitoring evaluation."""

    def __init__(self, registry: CollectorRegistry, *, model: str = "") -> None:
        self.registry = registry
        self.model = model
        self._lock = threading.Lock()
        self._seen: dict[str, set[tuple[str, ...]]] = {}
        r = registry
        self.drift_statistic = Gauge(
            "tradeloop_drift_statistic",
            "Drift test statistic per variant and feature (p-value for ks/chisquare/z, else a "
            "distance).",
            ("model", "variant", "feature", "method"),
            registry=r,
        )
        self.drift_threshold = Gauge(
            "tradeloop_drift_threshold",
            "The threshold the feature's drift statistic is compared with.",
            ("model", "variant", "feature", "method"),
            registry=r,
        )
        self.drift_detected = Gauge(
            "tradeloop_drift_detected",
            "1 when the feature's drift test says drifted for the variant's inputs, else 0.",
            ("model", "variant", "feature"),
            registry=r,
        )
        self.drift_share = Gauge(
            "tradeloop_drift_share",
            "Share of tested features that drifted (the prediction column not counted).",
            ("model", "variant"),
            registry=r,
        )
        self.dataset_drift = Gauge(
            "tradeloop_dataset_drift",
            "1 when the drifted share reaches the spec's drift.share.",
            ("model", "variant"),
            registry=r,
        )
        self.perf = {
            k: Gauge(f"tradeloop_perf_{k}", help_, ("model", "variant", "version"), registry=r)
            for k, (_, help_) in _PERF.items()
        }
        self.alert_firing = Gauge(
            "tradeloop_alert_firing",
            "1 while the tradeloop alert rule is firing, else 0.",
            ("model", "rule", "severity"),
            registry=r,
        )
        self.alert_pending = Gauge(
            "tradeloop_alert_pending",
            "1 while the tradeloop alert rule is pending (breaching, waiting out `for`).",
            ("model", "rule", "severity"),
            registry=r,
        )
        self.last_evaluation = Gauge(
            "tradeloop_monitor_last_evaluation_timestamp_seconds",
            "Unix time of the monitor's last completed evaluation.",
            ("model",),
            registry=r,
        )
        self.slo_latency = Gauge(
            "tradeloop_slo_latency_p99_ms",
            "p99 latency (ms) of live answers over monitoring.slos.window, per variant.",
            ("model", "variant"),
            registry=r,
        )
        self.slo_errors = Gauge(
            "tradeloop_slo_error_rate",
            "Share of requests that failed (5xx) over the last monitor interval, per variant.",
            ("model", "variant"),
            registry=r,
        )
        self.out_of_range = Gauge(
            "tradeloop_input_out_of_range_share",
            "Share of live rows over monitoring.slos.window with a feature outside the "
            "training range, per variant.",
            ("model", "variant"),
            registry=r,
        )
        self._notifier: list[_NotifierCollector] = []  # shared by every view

    def for_model(self, model: str) -> MonitorGauges:
        """The same series (one registry holds each name once), labelled for another pipeline:
        a process that monitors many pipelines publishes all of them on one `/metrics`."""
        view = copy.copy(self)
        view.model = model
        view._seen = {}
        return view

    # ------------------------------------------------------------------ helpers

    def _publish(self, key: str, gauge: Gauge, values: Mapping[tuple[str, ...], float]) -> None:
        """Set these series and remove the ones set last time that are gone now."""
        with self._lock:
            for labels, v in values.items():
                gauge.labels(*labels).set(v)
            for labels in self._seen.get(key, set()) - set(values):
                with contextlib.suppress(KeyError):
                    gauge.remove(*labels)
            self._seen[key] = set(values)

    # ------------------------------------------------------------------ setters

    def set_drift(self, report: Any) -> None:
        """The champion's drift report (or its `to_dict()`); None clears the drift series."""
        self.set_drift_by_variant({"champion": report} if report is not None else {})

    def set_drift_by_variant(self, reports: Mapping[str, Any]) -> None:
        """variant -> `drift.DriftReport` (or its `to_dict()`); a variant left out, or None,
        has its series removed."""
        m = self.model
        stats: dict[tuple[str, ...], float] = {}
        thresholds: dict[tuple[str, ...], float] = {}
        detected: dict[tuple[str, ...], float] = {}
        share: dict[tuple[str, ...], float] = {}
        dataset: dict[tuple[str, ...], float] = {}
        for variant, report in reports.items():
            if report is None:
                continue
            d = report if isinstance(report, Mapping) else report.to_dict()
            for feature, col in d.get("columns", {}).items():
                stats[(m, variant, feature, col["method"])] = float(col["statistic"])
                thresholds[(m, variant, feature, col["method"])] = float(col["threshold"])
                detected[(m, variant, feature)] = 1.0 if col["drifted"] else 0.0
            drift_share = alert_values(drift=d)["drift_share"]  # the alerts' own definition
            if drift_share is not None:
                share[(m, variant)] = float(drift_share)
            if d.get("columns"):
                dataset[(m, variant)] = 1.0 if d["dataset_drift"] else 0.0
        self._publish("drift_statistic", self.drift_statistic, stats)
        self._publish("drift_threshold", self.drift_threshold, thresholds)
        self._publish("drift_detected", self.drift_detected, detected)
        self._publish("drift_share", self.drift_share, share)
        self._publish("dataset_drift", self.dataset_drift, dataset)

    def set_performance(
        self, metrics: Iterable[PerformanceMetrics], serving: Iterable[tuple[str, str]] = ()
    ) -> None:
        """One series per (variant, version) graded now; None metrics are left absent.

        `serving`: (variant, version) pairs that answer now. One with no graded outcome yet
        (a fresh model: outcomes arrive a label horizon later) gets NaN, "not known yet", so
        its series exist from the first evaluation and a rule comparing them stays quiet."""
        values: dict[str, dict[tuple[str, ...], float]] = {k: {} for k in _PERF}
        metrics = list(metrics)
        graded = {(pm.variant, pm.model_version) for pm in metrics}
        for variant, version in serving:
            if (variant, version) not in graded:
                for k in _PERF:
                    values[k][(self.model, variant, version)] = math.nan
        for pm in metrics:
            labels = (self.model, pm.variant, pm.model_version)
            for k, (attr, _) in _PERF.items():
                v = getattr(pm, attr)
                if v is not None:
                    values[k][labels] = float(v)
        for k, gauge in self.perf.items():
            self._publish(f"perf_{k}", gauge, values[k])

    def set_alerts(self, rules: Iterable[AlertRule], open_alerts: Iterable[AlertRecord]) -> None:
        """Every rule gets a 0/1 series, so a rule that is fine shows 0 rather than nothing."""
        state = {a.rule: a.state for a in open_alerts}
        firing: dict[tuple[str, ...], float] = {}
        pending: dict[tuple[str, ...], float] = {}
        for r in rules:
            labels = (self.model, r.name, r.severity)
            firing[labels] = 1.0 if state.get(r.name) == "firing" else 0.0
            pending[labels] = 1.0 if state.get(r.name) == "pending" else 0.0
        self._publish("alert_firing", self.alert_firing, firing)
        self._publish("alert_pending", self.alert_pending, pending)

    def set_slo(self, figures: SloFigures) -> None:
        """Per-variant SLO figures; a variant with no traffic in the window has no series."""
        m = self.model
        lat: dict[tuple[str, ...], float] = {(m, v): x for v, x in figures.latency_p99_ms.items()}
        err: dict[tuple[str, ...], float] = {(m, v): x for v, x in figures.error_rate.items()}
        self._publish("slo_latency", self.slo_latency, lat)
        self._publish("slo_errors", self.slo_errors, err)
        oor: dict[tuple[str, ...], float] = {
            (m, v): x for v, x in figures.out_of_range_share.items()
        }
        self._publish("out_of_range", self.out_of_range, oor)

    def mark_evaluated(self, when: datetime) -> None:
        self.last_evaluation.labels(self.model).set(when.timestamp())

    def watch_notifier(self, notifier: Notifier) -> None:
        """Export the notifier's delivery counters (one collector per registry)."""
        with self._lock:
            if not self._notifier:
                self._notifier.append(_NotifierCollector())
                self.registry.register(self._notifier[0])
            self._notifier[0].notifiers[self.model] = notifier
