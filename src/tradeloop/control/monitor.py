"""The Monitor: drift and live performance of what serves, turned into alerts.

Each run reads the champion's reference profile (stored with its training run, so the training
data is never re-read), the latest `monitoring.drift.window` live predictions of the champion
from the prediction log, and the bars known now; computes per-feature and prediction drift and
the live performance of every variant with known outcomes; evaluates the spec's alert rules
(pending → firing → resolved, stored and audited).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tradeloop.control.reconciler import Context, Result
from tradeloop.control.world import World
from tradeloop.monitoring.outcomes import read_recent_features
from tradeloop.registry.mlflow_registry import CHAMPION, ModelVersion
from tradeloop.serving.predlog_compact import compact


def reference_profile(world: World, v: ModelVersion) -> Any:
    from tradeloop.monitoring.drift import ReferenceProfile

    cache: dict[str, Any] = world.__dict__.setdefault("_profiles", {})
    if v.version not in cache:
        path = world.registry.run_artifact(v.run_id or "", "reference_profile.json")
        cache[v.version] = ReferenceProfile.from_dict(json.loads(path.read_text()))
    return cache[v.version]


class MonitorController:
    name = "monitor"

    def __init__(self, interval: timedelta = timedelta(hours=1)) -> None:
        self.interval = interval

    def reconcile(self, ctx: Context) -> Result:
        from tradeloop.monitoring.alerts import AlertEngine
        from tradeloop.monitoring.drift import drift_report

        world: World = ctx.extras["world"]
        compact(world.project.predictions_dir)  # housekeeping: keep the log cheap to read
        spec = world.desired().spec
        champ = world.registry.by_alias(spec.name, CHAMPION)
        values: dict[str, Any] = {}
        if champ is not None:
            cur = read_recent_features(
                world.project.predictions_dir,
                spec.monitoring.drift.window,
                model=spec.name,
                versions=[champ.version],
            )
            if cur.height >= min(spec.monitoring.drift.window, 50):
                cols = [c for c in [*champ.features, "prediction"] if c in cur.columns]
                report = drift_report(
                    reference_profile(world, champ),
                    cur.select(cols),
                    spec.monitoring.drift,
                    columns=cols,
                )
                features = [c for c in cols if c != "prediction"]
                drifted = [c for c in features if report.column(c).drifted]
                values["drift_share"] = len(drifted) / max(1, len(features))
                values["prediction_drift"] = report.column("prediction").statistic
                values["feature_drift"] = {c: float(c in drifted) for c in features}
            perf = self._performance(world, spec, champ)
            if perf is not None:
                values.update(perf)
        engine = AlertEngine.from_spec(
            world.store, ctx.clock, spec.monitoring, labels={"model": spec.name}
        )
        try:
            transitions = engine.evaluate(values)
            engine.flush(timeout=2.0)
        finally:
            engine.close(timeout=2.0)
        for t in transitions:
            if t.notifies:
                value = f"{t.value:.3g}" if t.value is not None else "no data"
                ctx.emit(
                    f"alert_{t.state}",
                    version=champ.version if champ else None,
                    reason=f"{t.rule} = {value}",
                    alert=t.rule,
                )
        share = values.get("drift_share")
        return Result(
            message=f"drift share {share if share is not None else 'n/a'}, "
            f"{len(transitions)} alert transition(s)"
        )

    def _performance(self, world: World, spec: Any, champ: ModelVersion) -> dict[str, Any] | None:
        from tradeloop.monitoring.outcomes import predictions_from_log, read_prediction_log
        from tradeloop.monitoring.performance import PerformanceConfig, live_performance

        now = world.clock.now()
        log = read_prediction_log(
            world.project.predictions_dir,
            model=spec.name,
            since=now - timedelta(days=7),
            versions=[champ.version],
            modes=["live"],
        )
        if log.height == 0:
            return None
        bars = world.bars(now)
        perf = live_performance(
            predictions_from_log(log, bars),
            bars,
            as_of=now,
            config=PerformanceConfig.from_spec(spec),
        )
        mine = [m for m in perf if m.model_version == champ.version and m.n > 0]
        if not mine:
            return None
        m = mine[0]
        return {
            "hit_rate": m.hit_rate,
            "ic": m.ic,
            "sharpe": m.sharpe,
            "graded": m.n,
            "pending": m.pending,
        }
