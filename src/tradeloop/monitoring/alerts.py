"""Alert rules from the spec, evaluated like Prometheus alerting rules, state in the store.

Each rule (`AlertRule`: metric, op, value, `for`, severity, routes) is one alert, identified by
its fingerprint (sha256 of the rule name, the engine's labels such as the model, and the
feature for `feature_drift`), with one `alerts` row per episode. `alert_rules` holds the state
machine (pending, firing, resolved; what no data does), `store.alerts` the rows and queries,
`routes` the delivery; this engine applies the machine's steps to the store.

Only the moves to firing and to resolved are notified (the rule's routes) and written to the
audit log (actor `monitor`), each in the same transaction as the row change; notifications are
sent after the commit, so nothing is announced that did not happen. A pending alert that clears
has its row closed as `inactive`, silently. A stalled monitor is caught separately, by the
Prometheus rule on `tradeloop_monitor_last_evaluation_timestamp_seconds`.

Everything lives in the store, so a restarted (or replacement) monitor continues where the
last one stopped; there is at most one open (pending or firing) row per fingerprint provided
one engine evaluates a given set of labels at a time (the control plane's leader lease).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from tradeloop.clock import Clock, utc
from tradeloop.errors import BadInput
from tradeloop.monitoring.alert_rules import (
    MetricValues,
    Transition,
    annotate,
    closed_state,
    fingerprint,
    metric_value,
    next_step,
    transition,
)
from tradeloop.monitoring.routes import (
    LOG_ROUTE,
    Notifier,
    alert_payload,
    dedupe_key,
    log_transition,
)
from tradeloop.spec import AlertRule, MonitoringSpec, WebhookRoute
from tradeloop.store import Store
from tradeloop.store.alerts import (
    AlertRecord,
    AlertState,
    insert_alert,
    open_alerts,
    open_rows,
    recent_alerts,
    update_alert,
)

__all__ = [
    "ACTOR",
    "AlertEngine",
    "AlertRecord",
    "AlertState",
    "MetricValues",
    "Transition",
    "fingerprint",
    "metric_value",
    "open_alerts",
    "recent_alerts",
]

ACTOR = "monitor"


class AlertEngine:
    """Evaluates the spec's alert rules against current metric values; see the module doc.

    labels: identify this engine's alerts (e.g. {"model": "demo"}); part of every fingerprint,
    sent with every notification, and the scope within which rules removed from the spec have
    their open alerts closed.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        rules: Sequence[AlertRule],
        routes: Mapping[str, WebhookRoute] | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        notifier: Notifier | None = None,
        actor: str = ACTOR,
    ) -> None:
        self.store = store
        self.clock = clock
        self.rules = list(rules)
        self.labels = {str(k): str(v) for k, v in (labels or {}).items()}
        self.notifier = notifier if notifier is not None else Notifier(routes or {})
        self.actor = actor
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise BadInput(f"duplicate alert rule names: {sorted(names)}")
        for r in self.rules:
            unknown = [x for x in r.routes if x != LOG_ROUTE and x not in self.notifier.webhooks]
            if unknown:
                raise BadInput(f"alert {r.name!r} routes to unknown webhook(s) {unknown}")
            if r.metric == "feature_drift" and not r.feature:
                raise BadInput(f"alert {r.name!r}: feature_drift needs 'feature'")
        self._routes = {self.fingerprint(r): tuple(r.routes) for r in self.rules}

    @classmethod
    def from_spec(
        cls,
        store: Store,
        clock: Clock,
        monitoring: MonitoringSpec,
        *,
        labels: Mapping[str, str] | None = None,
        notifier: Notifier | None = None,
    ) -> AlertEngine:
        return cls(
            store, clock, monitoring.alerts, monitoring.webhooks, labels=labels, notifier=notifier
        )

    # ------------------------------------------------------------------ identity

    def rule_labels(self, rule: AlertRule) -> dict[str, str]:
        """Identifying labels: the engine's, the alert name, and the feature if any."""
        out = {**self.labels, "alertname": rule.name}
        if rule.feature:
            out["feature"] = rule.feature
        return out

    def fingerprint(self, rule: AlertRule) -> str:
        return fingerprint(rule.name, self.rule_labels(rule))

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, values: MetricValues) -> list[Transition]:
        """One evaluation of every rule at `clock.now()`; returns the state changes.

        Idempotent per point in time, and cheap: one transaction, notifications queued (never
        sent inline), so a dead webhook cannot slow the monitoring loop.
        """
        now = utc(self.clock.now())
        out: list[Transition] = []
        with self.store.begin() as conn:
            opened = self._open_rows(conn)
            for rule in self.rules:
                fp = self.fingerprint(rule)
                rows = opened.pop(fp, [])
                for extra in rows[1:]:  # never expected; close duplicates rather than spread them
                    self._close(conn, extra, "inactive", now)
                row = rows[0] if rows else None
                t = self._step(conn, rule, fp, row, metric_value(rule, values), now)
                if t is not None:
                    out.append(t)
            for rows in opened.values():  # open alerts of rules no longer in the spec
                for row in rows:
                    out.append(self._retire(conn, row, now))
        for t in out:
            if t.notifies:
                self._notify(t)
        self._refresh_alertmanager(now, {t.fingerprint for t in out})
        return out

    def _refresh_alertmanager(self, now: datetime, just_sent: set[str]) -> None:
        """Alertmanager forgets an alert nobody re-sends (its resolve_timeout), so firing
        alerts go to alertmanager routes on every evaluation, as Prometheus does; Alertmanager
        deduplicates them. Webhooks hear each transition once."""
        am = {n for n, r in self.notifier.webhooks.items() if r.kind == "alertmanager"}
        if not am:
            return
        rules = {self.fingerprint(r): r for r in self.rules}
        for rec in self.open_alerts():
            rule = rules.get(rec.fingerprint)
            if rec.state != "firing" or rule is None or rec.fingerprint in just_sent:
                continue
            t = transition(rec, "firing", now, rule.severity, annotate(rule, rec.state, rec.value))
            for route in set(rule.routes) & am:
                self.notifier.send(route, alert_payload(t, route))

    def _open_rows(self, conn: Connection) -> dict[str, list[AlertRecord]]:
        """Open rows within this engine's label scope, by fingerprint, newest first."""
        out: dict[str, list[AlertRecord]] = {}
        for rec in open_rows(conn, self.labels):
            out.setdefault(rec.fingerprint, []).append(rec)
        return out

    def _step(
        self,
        conn: Connection,
        rule: AlertRule,
        fp: str,
        row: AlertRecord | None,
        value: float | None,
        now: datetime,
    ) -> Transition | None:
        """Apply `alert_rules.next_step` to the row; the transition if the state changed."""
        step = next_step(rule, row, value, now)
        if step.action == "keep":
            return None
        if step.action == "open":
            assert step.state is not None  # open always names the new state
            fired = now if step.state == "firing" else None
            labels = {**self.rule_labels(rule), "severity": rule.severity}
            new = AlertRecord(0, rule.name, fp, step.state, value, now, fired, None, now, labels)
            return self._transition(conn, rule, insert_alert(conn, new), "inactive", now)
        assert row is not None  # every other action has a row to act on
        if step.action == "touch":
            update_alert(conn, row, last_eval_at=now)
            return None
        if step.action == "update":
            update_alert(conn, row, value=value, last_eval_at=now)
            return None
        if step.action == "fire":
            rec = update_alert(
                conn, row, state="firing", fired_at=now, value=value, last_eval_at=now
            )
            return self._transition(conn, rule, rec, "pending", now)
        assert step.state is not None  # close always names the final state
        rec = self._close(conn, row, step.state, now, value)
        return self._transition(conn, rule, rec, row.state, now)

    def _close(
        self,
        conn: Connection,
        row: AlertRecord,
        state: AlertState,
        now: datetime,
        value: float | None = None,
    ) -> AlertRecord:
        v = row.value if value is None else value
        return update_alert(conn, row, state=state, resolved_at=now, value=v, last_eval_at=now)

    def _retire(self, conn: Connection, row: AlertRecord, now: datetime) -> Transition:
        """Close an open alert whose rule left the spec: firing ones resolve, announced in the
        audit log and the Python log (their routes went with the rule)."""
        rec = self._close(conn, row, closed_state(row.state), now)
        ann = {"summary": "the rule was removed from the spec", "description": ""}
        t = transition(rec, row.state, now, row.labels.get("severity", "warning"), ann)
        if t.notifies:
            self._audit(conn, t, {"reason": "rule removed"})
        return t

    def _transition(
        self,
        conn: Connection,
        rule: AlertRule,
        rec: AlertRecord,
        previous: AlertState,
        now: datetime,
    ) -> Transition:
        t = transition(rec, previous, now, rule.severity, annotate(rule, rec.state, rec.value))
        if t.notifies:
            self._audit(conn, t, {"routes": list(rule.routes)})
        return t

    def _audit(self, conn: Connection, t: Transition, extra: dict[str, Any]) -> None:
        self.store.audit.append(
            self.actor,
            f"alert.{t.state}",
            f"alert:{t.rule}",
            {
                "fingerprint": t.fingerprint,
                "previous": t.previous,
                "value": t.value,
                "labels": dict(t.labels),
                "started_at": t.started_at.isoformat(),
                **extra,
            },
            conn=conn,
        )

    def _notify(self, t: Transition) -> None:
        routes = self._routes.get(t.fingerprint, (LOG_ROUTE,))  # a retired rule: the log
        for route in routes:
            if route == LOG_ROUTE:
                log_transition(t)
                self.notifier.logged()
            else:
                self.notifier.send(route, alert_payload(t, route), key=dedupe_key(t))

    # ------------------------------------------------------------------ reading

    def open_alerts(self) -> list[AlertRecord]:
        """Pending and firing alerts in this engine's scope, oldest first."""
        return open_alerts(self.store, labels=self.labels)

    def firing(self) -> set[str]:
        """Names of the rules firing now (what `retraining.on` reacts to)."""
        return {r.rule for r in self.open_alerts() if r.state == "firing"}

    def recent(self, limit: int = 50) -> list[AlertRecord]:
        """The newest alert rows in this engine's scope (any state), newest first."""
        return recent_alerts(self.store, limit=limit, labels=self.labels)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait for queued webhook notifications (tests, graceful shutdown)."""
        return self.notifier.flush(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self.notifier.close(timeout)
