"""The `monitoring` and `retraining` sections: what is watched, what alerts, what retrains."""

from __future__ import annotations

import typing
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator, model_validator

from tradeloop.spec.base import SpecModel
from tradeloop.spec.durations import Duration

DriftMethodName = Literal["auto", "ks", "psi", "wasserstein", "jensenshannon", "chisquare"]
# the names a drift spec accepts ("auto" picks one per feature); kept in step with the methods
DRIFT_METHODS: tuple[str, ...] = typing.get_args(DriftMethodName)


class DriftSpec(SpecModel):
    method: DriftMethodName = "auto"
    threshold: float | None = Field(None, gt=0, description="default: the method's own")
    share: float = Field(0.5, gt=0, le=1, description="share of drifted features = dataset drift")
    window: int = Field(500, ge=10, description="recent predictions compared with the reference")
    features: dict[str, DriftMethodName] = Field(
        default_factory=dict, description="per-feature method"
    )


AlertMetric = Literal[
    "drift_share",
    "feature_drift",
    "prediction_drift",
    "hit_rate",
    "sharpe",
    "ic",
    "latency_p99_ms",
    "error_rate",
    "out_of_range_share",
]
# Every metric above has a producer: drift and performance (the monitor), latency_p99_ms,
# error_rate and out_of_range_share (monitoring.slo, from the gateway's live data). Names a user might expect that nothing
# computes are refused with where to look instead.
UNPRODUCED_METRICS = {
    "log_dropped": "alert on tradeloop_predlog_dropped_total in Prometheus "
    "(TradeloopPredictionLogDropping in deploy/prometheus/rules.yml)",
}


class AlertRule(SpecModel):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    metric: AlertMetric
    feature: str | None = Field(None, description="for feature_drift: which feature")
    op: Literal[">", ">=", "<", "<="] = ">"
    value: float
    for_: Duration = Field(timedelta(0), alias="for")
    severity: Literal["info", "warning", "critical"] = "warning"
    routes: list[str] = Field(default_factory=lambda: ["log"])

    @field_validator("metric", mode="before")
    @classmethod
    def _produced(cls, v: object) -> object:
        if isinstance(v, str) and v in UNPRODUCED_METRICS:
            raise ValueError(
                f"metric {v!r} is produced by nothing in tradeloop; {UNPRODUCED_METRICS[v]}"
            )
        return v


class WebhookRoute(SpecModel):
    url: str = Field(
        description="${ENV_VAR} or a file path holding the URL (a literal URL works, but "
        "`validate` warns: a tracked spec should not hold one)"
    )
    kind: Literal["webhook", "alertmanager"] = Field(
        "webhook",
        description="webhook: Slack-compatible body posted to url; alertmanager: url is an "
        "Alertmanager, alerts go to its /api/v2/alerts",
    )
    timeout: Duration = timedelta(seconds=2)
    retries: int = Field(2, ge=0, le=10)


class SLOSpec(SpecModel):
    latency_p99_ms: float = Field(5.0, gt=0)
    error_rate: float = Field(0.01, ge=0, le=1)
    window: Duration = Field(timedelta(minutes=5), description="live data the SLOs judge")
    for_: Duration = Field(timedelta(0), alias="for", description="breach this long to fire")


class PerformanceSpec(SpecModel):
    window: int = Field(500, ge=10, description="predictions with known outcomes per window")


class MonitoringSpec(SpecModel):
    interval: Duration = Field(
        timedelta(hours=1), description="how often the monitor evaluates drift and alerts"
    )
    drift: DriftSpec = Field(default_factory=DriftSpec)
    performance: PerformanceSpec = Field(default_factory=PerformanceSpec)
    slos: SLOSpec = Field(default_factory=SLOSpec)
    alerts: list[AlertRule] = Field(default_factory=list)
    webhooks: dict[str, WebhookRoute] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _routes_exist(self) -> MonitoringSpec:
        if self.interval <= timedelta(0):
            raise ValueError(f"interval must be positive, got {self.interval}")
        check_alert_rules(self.alerts, self.webhooks)
        return self


def check_alert_rules(alerts: Sequence[AlertRule], webhooks: Collection[str]) -> None:
    """Alert names are unique, each route is `log` or a webhook in `webhooks`, and a
    feature_drift alert names its feature. ValueError otherwise."""
    names = [a.name for a in alerts]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"duplicate alert names: {sorted(dupes)}")
    for a in alerts:
        for r in a.routes:
            if r != "log" and r not in webhooks:
                raise ValueError(f"alert '{a.name}' routes to unknown webhook '{r}'")
        if a.metric == "feature_drift" and a.feature is None:
            raise ValueError(f"alert '{a.name}': feature_drift needs 'feature'")


class RetrainingSpec(SpecModel):
    schedule: str | None = Field(None, description="cron expression (UTC)")
    max_age: Duration | None = timedelta(days=30)
    on: list[str] = Field(default_factory=list, description="alert names that trigger training")

    @model_validator(mode="after")
    def _cron(self) -> RetrainingSpec:
        if self.schedule is not None:
            from croniter import croniter

            if not croniter.is_valid(self.schedule):
                raise ValueError(f"schedule is not a valid cron expression: {self.schedule!r}")
        return self


def check_retraining_triggers(monitoring: MonitoringSpec, retraining: RetrainingSpec) -> None:
    """Every alert `retraining.on` names exists; ValueError otherwise."""
    alert_names = {a.name for a in monitoring.alerts}
    for trigger in retraining.on:
        if trigger not in alert_names:
            raise ValueError(f"retraining.on names unknown alert '{trigger}'")
