"""What the monitor sees now: the one place drift, live performance and SLO figures are read.

The monitor (alerts, gauges) and `tradeloop monitor report` both call `observe`, and both turn
it into alert values with `monitoring.report.alert_values`, so an alert and the report can
never disagree about what a metric is (a test holds them equal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tradeloop.control.world import World
from tradeloop.monitoring.outcomes import (
    predictions_from_log,
    read_prediction_log,
    read_recent_features,
)
from tradeloop.monitoring.performance import PerformanceConfig, PerformanceMetrics
from tradeloop.monitoring.report import alert_values
from tradeloop.monitoring.slo import RequestWindow, SloFigures, slo_figures
from tradeloop.registry.mlflow_registry import CHAMPION, ModelVersion
from tradeloop.spec import Spec

__all__ = ["MIN_DRIFT_ROWS", "PERFORMANCE_LOOKBACK", "Observation", "observe", "reference_profile"]

# Fewer live rows than this (or than the drift window, if smaller) tell nothing about drift.
MIN_DRIFT_ROWS = 50
# How far back the prediction log is read for live performance (the window itself is rows).
PERFORMANCE_LOOKBACK = timedelta(days=30)


def reference_profile(world: World, v: ModelVersion) -> Any:
    """The training reference profile stored with `v`'s run, cached per version."""
    import json

    from tradeloop.monitoring.drift import ReferenceProfile

    cache: dict[str, Any] = world.__dict__.setdefault("_profiles", {})
    if v.version not in cache:
        path = world.registry.run_artifact(v.run_id or "", "reference_profile.json")
        cache[v.version] = ReferenceProfile.from_dict(json.loads(path.read_text()))
    return cache[v.version]


@dataclass(frozen=True)
class Observation:
    """One look at the live system: the inputs and the alert values derived from them."""

    model: str
    as_of: datetime
    champion: ModelVersion | None
    drift: Any = None  # a DriftReport, when enough live rows exist
    reference: Any = None
    current: Any = None  # the live feature table the drift report compared
    performance: list[PerformanceMetrics] = field(default_factory=list)
    slo: SloFigures | None = None
    values: dict[str, Any] = field(default_factory=dict)


def observe(
    world: World, spec: Spec, now: datetime, *, requests: RequestWindow | None = None
) -> Observation:
    """Drift of the champion, live performance of every variant, SLO figures; then values."""
    from tradeloop.monitoring.drift import drift_report

    name = spec.name
    champ = world.registry.by_alias(name, CHAMPION)
    drift = reference = current = None
    if champ is not None:
        window = spec.monitoring.drift.window
        cur = read_recent_features(
            world.project.predictions_dir, window, model=name, versions=[champ.version]
        )
        if cur.height >= min(window, MIN_DRIFT_ROWS):
            cols = [c for c in [*champ.features, "prediction"] if c in cur.columns]
            reference, current = reference_profile(world, champ), cur.select(cols)
            drift = drift_report(reference, current, spec.monitoring.drift, columns=cols)
    performance = _performance(world, spec, now)
    slo = slo_figures(world.project.predictions_dir, name, now, spec.monitoring.slos, requests)
    values = alert_values(drift=drift, performance=performance, extra=slo.values())
    return Observation(name, now, champ, drift, reference, current, performance, slo, values)


def _performance(world: World, spec: Spec, now: datetime) -> list[PerformanceMetrics]:
    from tradeloop.monitoring.performance import live_performance

    log = read_prediction_log(
        world.project.predictions_dir, model=spec.name, since=now - PERFORMANCE_LOOKBACK
    )
    if log.height == 0:
        return []
    bars = world.bars(now)
    return live_performance(
        predictions_from_log(log, bars),
        bars,
        as_of=now,
        config=PerformanceConfig.from_spec(spec),
    )
