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
from tradeloop.registry.mlflow_registry import CHALLENGER, CHAMPION, ModelVersion
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
    drift: Any = None  # the champion's DriftReport, when enough live rows exist (alerts)
    reference: Any = None
    current: Any = None  # the live feature table the drift report compared
    performance: list[PerformanceMetrics] = field(default_factory=list)
    slo: SloFigures | None = None
    values: dict[str, Any] = field(default_factory=dict)
    # variant -> DriftReport of that variant's own inputs against its version's reference
    # (the champion's live rows; the challenger's canary or shadow rows), for the gauges
    drift_by_variant: dict[str, Any] = field(default_factory=dict)


def observe(
    world: World, spec: Spec, now: datetime, *, requests: RequestWindow | None = None
) -> Observation:
    """Drift of each variant (the champion's drives the alerts), live performance of every
    variant, SLO figures; then values."""
    name = spec.name
    champ = world.registry.by_alias(name, CHAMPION)
    drift = reference = current = None
    by_variant: dict[str, Any] = {}
    if champ is not None:
        drift, reference, current = _drift(world, spec, champ, ("live",))
        if drift is not None:
            by_variant["champion"] = drift
        chal = world.registry.by_alias(name, CHALLENGER)
        if chal is not None and chal.version != champ.version:
            # the challenger's canary rows, or its shadow copies of live requests
            report = _drift(world, spec, chal, ("live", "shadow"))[0]
            if report is not None:
                by_variant["challenger"] = report
    performance = _performance(world, spec, now)
    slo = slo_figures(world.project.predictions_dir, name, now, spec.monitoring.slos, requests)
    values = alert_values(drift=drift, performance=performance, extra=slo.values())
    return Observation(
        name, now, champ, drift, reference, current, performance, slo, values, by_variant
    )


def _drift(
    world: World, spec: Spec, v: ModelVersion, modes: tuple[str, ...]
) -> tuple[Any, Any, Any]:
    """(report, reference, current) for `v`'s newest logged rows in `modes` against its own
    reference profile; (None, None, None) with too few rows."""
    from tradeloop.monitoring.drift import drift_report

    window = spec.monitoring.drift.window
    cur = read_recent_features(
        world.project.predictions_dir, window, model=spec.name, versions=[v.version], modes=modes
    )
    if cur.height < min(window, MIN_DRIFT_ROWS):
        return None, None, None
    cols = [c for c in [*v.features, "prediction"] if c in cur.columns]
    reference, current = reference_profile(world, v), cur.select(cols)
    return drift_report(reference, current, spec.monitoring.drift, columns=cols), reference, current


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
