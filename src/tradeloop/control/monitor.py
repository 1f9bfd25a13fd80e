"""The Monitor: drift and live performance of what serves, turned into alerts and gauges.

Each run looks at the live system through `observe` (the champion's drift against its stored
reference profile, live performance of every variant with known outcomes, the SLO figures),
evaluates the spec's alert rules plus the SLOs as rules (pending → firing → resolved, stored
and audited), publishes the result on `MonitorGauges` when it has them, and asks to run again
after `monitoring.interval`.

The notifier lives as long as the controller (one per process): a webhook still retrying when
a run ends keeps retrying, and the next run's notifications join the same queues. It is built
again only when the spec's webhooks change.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from tradeloop.control.observe import Observation, observe, reference_profile
from tradeloop.control.reconciler import Context, Result, TerminalError
from tradeloop.control.world import World
from tradeloop.errors import BadInput
from tradeloop.monitoring.references import resolve_routes
from tradeloop.monitoring.routes import Notifier
from tradeloop.monitoring.slo import RequestWindow, slo_rules
from tradeloop.serving.predlog_compact import compact
from tradeloop.spec import MonitoringSpec, WebhookRoute

__all__ = ["MonitorController", "reference_profile"]


class MonitorController:
    name = "monitor"

    def __init__(
        self,
        interval: timedelta = timedelta(hours=1),
        *,
        gauges: Any = None,
        requests: RequestWindow | None = None,
    ) -> None:
        self.interval = interval
        self.gauges = gauges  # a monitoring.gauges.MonitorGauges, or None
        self.requests = requests  # the in-process gateway's request counts, for error_rate
        self._notifier: Notifier | None = None
        self._webhooks: dict[str, WebhookRoute] = {}

    def notifier(self, monitoring: MonitoringSpec, base: Path) -> Notifier:
        """The long-lived notifier; rebuilt (after draining the old one) if webhooks changed.

        URLs are resolved here (`${ENV}` or a file): one that cannot be parks the monitor.
        """
        try:
            hooks = resolve_routes(monitoring.webhooks, base)
        except BadInput as exc:
            raise TerminalError(str(exc), "bad_reference") from exc
        if self._notifier is None or hooks != self._webhooks:
            if self._notifier is not None:
                self._notifier.close(timeout=2.0)
            self._notifier, self._webhooks = Notifier(hooks), hooks
            if self.gauges is not None:
                self.gauges.watch_notifier(self._notifier)
        return self._notifier

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (graceful shutdown)."""
        if self._notifier is not None:
            self._notifier.close(timeout)

    def reconcile(self, ctx: Context) -> Result:
        from tradeloop.monitoring.alerts import AlertEngine

        world: World = ctx.extras["world"]
        compact(world.project.predictions_dir)  # housekeeping: keep the log cheap to read
        spec = world.desired().spec
        now = ctx.clock.now()
        seen = observe(world, spec, now, requests=self.requests)
        rules = [*spec.monitoring.alerts, *slo_rules(spec.monitoring.slos)]
        engine = AlertEngine(
            world.store,
            ctx.clock,
            rules,
            labels={"model": spec.name},
            notifier=self.notifier(spec.monitoring, world.repo),
        )
        transitions = engine.evaluate(seen.values)
        champ = seen.champion
        for t in transitions:
            if t.notifies:
                value = f"{t.value:.3g}" if t.value is not None else "no data"
                ctx.emit(
                    f"alert_{t.state}",
                    version=champ.version if champ else None,
                    reason=f"{t.rule} = {value}",
                    alert=t.rule,
                )
        self._publish(seen, rules, engine)
        share = seen.values.get("drift_share")
        return Result(
            requeue_after=spec.monitoring.interval,
            message=f"drift share {share if share is not None else 'n/a'}, "
            f"{len(transitions)} alert transition(s)",
        )

    def _publish(self, seen: Observation, rules: list[Any], engine: Any) -> None:
        g = self.gauges
        if g is None:
            return
        g.set_drift_by_variant(seen.drift_by_variant)
        champ = seen.champion
        g.set_performance(seen.performance, [("champion", champ.version)] if champ else [])
        g.set_alerts(rules, engine.open_alerts())
        if seen.slo is not None:
            g.set_slo(seen.slo)
        g.mark_evaluated(seen.as_of)
