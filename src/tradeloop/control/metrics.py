"""Prometheus metrics for the controller manager, in a registry of its own or one passed in
(so `tradeloop up` can expose them on the gateway's `/metrics`). No process-wide globals.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tradeloop.control.reconciler import PARK_REASONS

OUTCOMES = ("ok", "error", "terminal")

# From a quick database look to a training run.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.runs = Counter(
            "tradeloop_controller_runs",
            "Reconcile runs, by outcome (ok, error, terminal).",
            ["controller", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "tradeloop_controller_run_duration_seconds",
            "Wall time of one reconcile run.",
            ["controller"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.leader = Gauge(
            "tradeloop_controller_leader",
            "1 while this process holds the controller's leader lease.",
            ["controller"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            "tradeloop_controller_last_success_timestamp_seconds",
            "Clock time (Unix seconds) at the end of the last successful run.",
            ["controller"],
            registry=self.registry,
        )
        self.parked = Gauge(
            "tradeloop_controller_parked",
            "1 while the controller is parked on a terminal error, by reason (see status).",
            ["controller", "reason"],
            registry=self.registry,
        )
        self.errors = Counter(
            "tradeloop_controller_errors",
            "Reconcile runs that raised, by exception class (retried, or parked if terminal).",
            ["controller", "error"],
            registry=self.registry,
        )
        self.skips = Counter(
            "tradeloop_controller_lease_skips",
            "Due runs skipped because another replica holds the lease.",
            ["controller"],
            registry=self.registry,
        )

    def declare(self, controllers: Iterable[str]) -> None:
        """Create every series at zero, so dashboards and `rate()` see them before the first run.

        The last-success gauge is left absent until a success: a zero would read as 1970.
        """
        for name in controllers:
            for outcome in OUTCOMES:
                self.runs.labels(name, outcome)
            self.duration.labels(name)
            self.leader.labels(name).set(0)
            self.skips.labels(name)
            self.set_parked(name, None)

    def set_parked(self, controller: str, reason: str | None) -> None:
        """One series per reason, 1 for the reason it is parked on (all 0: running)."""
        for r in PARK_REASONS:
            self.parked.labels(controller, r).set(1 if r == reason else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
