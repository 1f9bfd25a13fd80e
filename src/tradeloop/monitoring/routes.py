"""What alert notifications say: the `log` route's line and the webhook body.

Webhook bodies are Slack-compatible (`text` plus `attachments`, which Slack, Mattermost and
Rocket.Chat render) and carry Alertmanager's webhook fields too (`status`, `alerts[]` with
`labels`, `annotations`, `startsAt`, `endsAt`, `fingerprint`, and the `common*` fields), so a
receiver written for Alertmanager works unchanged.

Delivery (queues, retries, the dedupe key, Alertmanager's API) is `delivery.Notifier`'s job;
notifications still queued when the process dies are lost, and the audit log has every
transition regardless.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from tradeloop.clock import utc
from tradeloop.monitoring.alert_rules import Transition
from tradeloop.monitoring.delivery import LOGGED, Notifier, RouteStats

__all__ = [
    "LOG_ROUTE",
    "Notifier",
    "RouteStats",
    "alert_payload",
    "dedupe_key",
    "log_transition",
]

log = logging.getLogger(__name__)

LOG_ROUTE = LOGGED
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt for an alert still firing
_COLORS = {"firing": {"critical": "#d32f2f", "warning": "#f9a825", "info": "#1976d2"}}
_RESOLVED_COLOR = "#2e7d32"
_LEVELS = {"critical": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}


def _iso(ts: datetime | None) -> str:
    return ZERO_TIME if ts is None else utc(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def alert_payload(t: Transition, receiver: str = "") -> dict[str, Any]:
    """The webhook body for a firing or resolved transition (see the module docstring)."""
    status = "resolved" if t.state == "resolved" else "firing"
    labels = dict(t.labels)
    annotations = dict(t.annotations)
    color = _RESOLVED_COLOR if status == "resolved" else _COLORS["firing"].get(t.severity, "")
    title = f"[{status.upper()}] {t.rule}"
    text = f"{title}: {annotations.get('summary', '')}".rstrip(": ")
    alert = {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": _iso(t.fired_at or t.started_at),
        "endsAt": _iso(t.resolved_at) if status == "resolved" else ZERO_TIME,
        "fingerprint": t.fingerprint,
        "generatorURL": "",
    }
    return {
        # Slack-compatible
        "text": text,
        "attachments": [
            {
                "color": color,
                "title": title,
                "text": annotations.get("description", ""),
                "fields": [
                    {"title": k, "value": str(v), "short": True} for k, v in sorted(labels.items())
                ]
                + [{"title": "value", "value": _fmt(t.value), "short": True}],
                "ts": int(utc(t.at).timestamp()),
            }
        ],
        # Alertmanager webhook (version 4)
        "version": "4",
        "receiver": receiver,
        "status": status,
        "groupKey": f'{{}}:{{alertname="{t.rule}"}}',
        "groupLabels": {"alertname": t.rule},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "truncatedAlerts": 0,
        "alerts": [alert],
        # flat copies of the one alert's fields, for simple receivers
        "labels": labels,
        "annotations": annotations,
        "startsAt": alert["startsAt"],
        "endsAt": alert["endsAt"],
        "value": t.value,
    }


def _fmt(v: float | None) -> str:
    return "no data" if v is None else f"{v:.6g}"


def log_transition(t: Transition) -> None:
    """The `log` route: one line at the alert's severity (resolved ones at INFO)."""
    level = logging.INFO if t.state == "resolved" else _LEVELS.get(t.severity, logging.WARNING)
    log.log(
        level,
        "alert %s %s: %s (value %s, labels %s)",
        t.rule,
        t.state.upper(),
        t.annotations.get("summary", ""),
        _fmt(t.value),
        dict(t.labels),
    )


def dedupe_key(t: Transition) -> str:
    """One key per alert episode and state: a transition is announced once per route."""
    return f"{t.fingerprint}:{t.state}:{utc(t.started_at).isoformat()}"
