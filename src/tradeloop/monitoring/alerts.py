"""Alert rules from the spec, evaluated like Prometheus alerting rules, state in the store.

Each rule (`AlertRule`: metric, op, value, `for`, severity, routes) is one alert, identified by
its fingerprint (sha256 of the rule name, the engine's labels such as the model, and the
feature for `feature_drift`). Its lifecycle, one `alerts` row per episode:

    inactive ──(condition true)──► pending ──(true for >= `for`)──► firing
        ▲                            │                                  │
        └────(condition false)───────┘            (condition false) ──► resolved

`for: 0` fires on the first true evaluation. A pending alert whose condition turns false goes
back to inactive silently (its row is closed as `inactive`), as in Prometheus. Only the moves
to firing and to resolved are notified (the rule's routes) and written to the audit log (actor
`monitor`), each in the same transaction as the row change; notifications are sent after the
commit, so nothing is announced that did not happen.

No data is not a reason to alert: a metric whose value is None (or NaN) leaves the alert as it
is — an inactive alert stays inactive, a pending one neither fires nor clears (its `for` clock
keeps running, so it fires on the first evaluation with data that still breaches), and a firing
one keeps firing until data says it is over. A stalled monitor is caught separately, by the
Prometheus rule on `tradeloop_monitor_last_evaluation_timestamp_seconds`.

Everything lives in the store, so a restarted (or replacement) monitor continues where the
last one stopped; there is at most one open (pending or firing) row per fingerprint provided
one engine evaluates a given set of labels at a time (the control plane's leader lease).
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, select, update

from tradeloop.clock import Clock, utc
from tradeloop.errors import BadInput
from tradeloop.monitoring.routes import LOG_ROUTE, Notifier, alert_payload, log_transition
from tradeloop.spec import AlertRule, MonitoringSpec, WebhookRoute, format_duration
from tradeloop.store import Store
from tradeloop.store.tables import alerts

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

AlertState = Literal["inactive", "pending", "firing", "resolved"]
OPEN: tuple[str, ...] = ("pending", "firing")
ACTOR = "monitor"
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
            raw = per.get(rule.feature) if isinstance(per, Mapping) else None
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


@dataclass(frozen=True)
class AlertRecord:
    """A row of the `alerts` table."""

    id: int
    rule: str
    fingerprint: str
    state: AlertState
    value: float | None
    started_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    last_eval_at: datetime
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("started_at", "fired_at", "resolved_at", "last_eval_at"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        return d

    @classmethod
    def of(cls, row: Any) -> AlertRecord:
        def opt(ts: datetime | None) -> datetime | None:
            return utc(ts) if ts is not None else None

        return cls(
            id=row.id,
            rule=row.rule,
            fingerprint=row.fingerprint,
            state=row.state,
            value=row.value,
            started_at=utc(row.started_at),
            fired_at=opt(row.fired_at),
            resolved_at=opt(row.resolved_at),
            last_eval_at=utc(row.last_eval_at),
            labels=dict(row.labels or {}),
        )


def _describe(rule: AlertRule) -> str:
    metric = f"{rule.metric}[{rule.feature}]" if rule.feature else rule.metric
    wait = f" for {format_duration(rule.for_)}" if rule.for_.total_seconds() > 0 else ""
    return f"{metric} {rule.op} {rule.value:g}{wait}"


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
        return out

    def _open_rows(self, conn: Connection) -> dict[str, list[AlertRecord]]:
        """Open rows within this engine's label scope, by fingerprint, newest first."""
        out: dict[str, list[AlertRecord]] = {}
        for rec in _open(conn, self.labels):
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
        if value is None:  # no data: keep the state, whatever it is
            if row is not None:
                conn.execute(update(alerts).where(alerts.c.id == row.id).values(last_eval_at=now))
            return None
        breached = _OPS[rule.op](value, rule.value)
        if row is None:
            if not breached:
                return None
            state: AlertState = "firing" if rule.for_.total_seconds() <= 0 else "pending"
            labels = {**self.rule_labels(rule), "severity": rule.severity}
            new_id = conn.execute(
                alerts.insert().values(
                    rule=rule.name,
                    fingerprint=fp,
                    state=state,
                    value=value,
                    started_at=now,
                    fired_at=now if state == "firing" else None,
                    resolved_at=None,
                    last_eval_at=now,
                    labels=labels,
                )
            ).inserted_primary_key[0]
            rec = AlertRecord(
                new_id,
                rule.name,
                fp,
                state,
                value,
                now,
                now if state == "firing" else None,
                None,
                now,
                labels,
            )
            return self._transition(conn, rule, rec, "inactive", now)
        if breached:
            if row.state == "pending" and now - row.started_at >= rule.for_:
                conn.execute(
                    update(alerts)
                    .where(alerts.c.id == row.id)
                    .values(state="firing", fired_at=now, value=value, last_eval_at=now)
                )
                rec = _replace(row, state="firing", fired_at=now, value=value, last_eval_at=now)
                return self._transition(conn, rule, rec, "pending", now)
            conn.execute(
                update(alerts).where(alerts.c.id == row.id).values(value=value, last_eval_at=now)
            )
            return None
        target: AlertState = "resolved" if row.state == "firing" else "inactive"
        rec = self._close(conn, row, target, now, value)
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
        conn.execute(
            update(alerts)
            .where(alerts.c.id == row.id)
            .values(state=state, resolved_at=now, value=v, last_eval_at=now)
        )
        return _replace(row, state=state, resolved_at=now, value=v, last_eval_at=now)

    def _retire(self, conn: Connection, row: AlertRecord, now: datetime) -> Transition:
        """Close an open alert whose rule left the spec: firing ones resolve, announced in the
        audit log and the Python log (their routes went with the rule)."""
        target: AlertState = "resolved" if row.state == "firing" else "inactive"
        rec = self._close(conn, row, target, now)
        ann = {"summary": "the rule was removed from the spec", "description": ""}
        t = _make(rec, row.state, now, row.labels.get("severity", "warning"), ann)
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
        what = _describe(rule)
        v = "no data" if rec.value is None else f"{rec.value:.6g}"
        if rec.state == "resolved":
            summary = f"{rule.metric} is {v}, no longer {rule.op} {rule.value:g}"
        else:
            summary = f"{rule.metric} is {v} ({what})"
        if rule.feature:
            summary = f"{rule.feature}: {summary}"
        ann = {"summary": summary, "description": f"tradeloop alert {rule.name}: {what}"}
        t = _make(rec, previous, now, rule.severity, ann)
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
            else:
                self.notifier.send(route, alert_payload(t, route))

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


def _matches(rec: AlertRecord, labels: Mapping[str, str]) -> bool:
    return all(rec.labels.get(k) == v for k, v in labels.items())


def _open(conn: Connection, labels: Mapping[str, str]) -> list[AlertRecord]:
    rows = conn.execute(
        select(alerts).where(alerts.c.state.in_(OPEN)).order_by(alerts.c.id.desc())
    ).all()
    return [rec for rec in map(AlertRecord.of, rows) if _matches(rec, labels)]


def open_alerts(store: Store, *, labels: Mapping[str, str] | None = None) -> list[AlertRecord]:
    """Pending and firing alerts (optionally only those carrying `labels`), oldest first."""
    with store.engine.connect() as conn:
        return sorted(_open(conn, labels or {}), key=lambda r: r.id)


def recent_alerts(
    store: Store, *, limit: int = 50, labels: Mapping[str, str] | None = None
) -> list[AlertRecord]:
    """Newest alert rows first, optionally only those carrying `labels` (the report uses it)."""
    want = dict(labels or {})
    out: list[AlertRecord] = []
    before: int | None = None
    with store.engine.connect() as conn:
        while len(out) < limit:  # labels are JSON: filter in Python, a page at a time
            q = select(alerts).order_by(alerts.c.id.desc()).limit(max(limit, 200))
            if before is not None:
                q = q.where(alerts.c.id < before)
            page = [AlertRecord.of(r) for r in conn.execute(q)]
            if not page:
                break
            before = page[-1].id
            out += [r for r in page if _matches(r, want)]
    return out[:limit]


def _replace(rec: AlertRecord, **changes: Any) -> AlertRecord:
    d = {**asdict(rec), **changes}
    return AlertRecord(**d)


def _make(
    rec: AlertRecord,
    previous: AlertState,
    now: datetime,
    severity: str,
    annotations: Mapping[str, str],
) -> Transition:
    return Transition(
        rule=rec.rule,
        fingerprint=rec.fingerprint,
        previous=previous,
        state=rec.state,
        value=rec.value,
        at=now,
        severity=severity,
        labels=dict(rec.labels),
        annotations=dict(annotations),
        started_at=rec.started_at,
        fired_at=rec.fired_at,
        resolved_at=rec.resolved_at,
        alert_id=rec.id,
    )
