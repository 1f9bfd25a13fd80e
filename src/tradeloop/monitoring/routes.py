"""Where alert notifications go: the Python log, and webhooks on background threads.

Webhook bodies are Slack-compatible (`text` plus `attachments`, which Slack, Mattermost and
Rocket.Chat render) and carry Alertmanager's webhook fields too (`status`, `alerts[]` with
`labels`, `annotations`, `startsAt`, `endsAt`, `fingerprint`, and the `common*` fields), so a
receiver written for Alertmanager works unchanged.

Delivery never blocks monitoring: `Notifier.send` only puts the body on the route's bounded
queue (a full queue counts a drop) and returns. One worker thread per route posts with httpx,
with the route's timeout and `retries` extra attempts on connection errors, timeouts, 5xx, 408
and 429, backing off exponentially between attempts (other 4xx are the receiver refusing the
body: retrying cannot help). A dead receiver therefore delays only its own queue. Backoff runs
on wall time, not the injected clock: it paces a network, not the market. Notifications still
queued when the process dies are lost; the audit log has every transition regardless.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import httpx

from tradeloop.clock import utc
from tradeloop.errors import BadInput
from tradeloop.monitoring.alert_rules import Transition
from tradeloop.spec import WebhookRoute
from tradeloop.spec.secrets import is_reference, resolve_secret

__all__ = ["LOG_ROUTE", "Notifier", "RouteStats", "alert_payload", "log_transition"]

log = logging.getLogger(__name__)

LOG_ROUTE = "log"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt for an alert still firing
_RETRY_STATUS = frozenset({408, 429})
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


@dataclass
class RouteStats:
    """Delivery counters of one webhook route (the gauges module exports them)."""

    sent: int = 0  # notifications delivered (2xx)
    failed: int = 0  # notifications given up on after every attempt
    dropped: int = 0  # notifications refused because the queue was full
    attempts: int = 0  # HTTP requests made
    last_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Job:
    payload: dict[str, Any]


class _Worker:
    def __init__(self, notifier: Notifier, name: str, route: WebhookRoute) -> None:
        self.notifier = notifier
        self.name = name
        self.route = route
        self.queue: queue.Queue[_Job | None] = queue.Queue(maxsize=notifier.max_queue)
        self.thread = threading.Thread(
            target=self._run, name=f"tradeloop-webhook-{name}", daemon=True
        )
        self.thread.start()

    def _run(self) -> None:
        n = self.notifier
        timeout = self.route.timeout.total_seconds()
        with httpx.Client(timeout=timeout, headers={"user-agent": "tradeloop-monitor"}) as client:
            while True:
                job = self.queue.get()
                if job is None:
                    return
                try:
                    self._deliver(client, job)
                except Exception:  # a bug must not kill the route's worker
                    log.exception("webhook %s: delivery crashed", self.name)
                    n._count(self.name, failed=1, error="internal error")
                finally:
                    n._handled()

    def _deliver(self, client: httpx.Client, job: _Job) -> None:
        n = self.notifier
        attempts = self.route.retries + 1
        error = ""
        for attempt in range(attempts):
            if attempt:
                delay = min(n.backoff * 2 ** (attempt - 1), n.max_backoff)
                if n._stop.wait(delay):
                    break  # closing: give up on the rest
            n._count(self.name, attempts=1)
            try:
                url = resolve_secret(self.route.url, f"webhook {self.name}")
            except BadInput as exc:  # a missing secret: retrying may find it set
                error = str(exc)
                continue
            try:
                resp = client.post(url, json=job.payload)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                continue
            if resp.is_success:
                n._count(self.name, sent=1)
                return
            error = f"HTTP {resp.status_code}"
            if resp.status_code < 500 and resp.status_code not in _RETRY_STATUS:
                break
        n._count(self.name, failed=1, error=error)
        log.warning(
            "webhook %s (%s): giving up after %d attempt(s): %s",
            self.name,
            self.route.url if is_reference(self.route.url) else "url redacted",
            attempts,
            error,
        )


class Notifier:
    """Queues webhook notifications and posts them from one background thread per route."""

    def __init__(
        self,
        webhooks: Mapping[str, WebhookRoute],
        *,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        max_queue: int = 1000,
    ) -> None:
        self.webhooks = dict(webhooks)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_queue = max_queue
        self._stats = {name: RouteStats() for name in self.webhooks}
        self._workers: dict[str, _Worker] = {}
        self._lock = threading.Lock()
        self._done = threading.Condition(threading.Lock())
        self._accepted = 0
        self._finished = 0
        self._stop = threading.Event()

    def send(self, route: str, payload: dict[str, Any]) -> bool:
        """Queue one body for `route`; never blocks. False when the route is unknown, the
        notifier is closed or the route's queue is full (counted as dropped)."""
        if route not in self.webhooks:
            log.error("alert route %r is not a configured webhook", route)
            return False
        with self._lock:
            if self._stop.is_set():
                return False
            worker = self._workers.get(route)
            if worker is None:
                worker = self._workers[route] = _Worker(self, route, self.webhooks[route])
            try:
                worker.queue.put_nowait(_Job(payload))
            except queue.Full:
                self._stats[route].dropped += 1
                log.warning("webhook %s: queue full, notification dropped", route)
                return False
            self._accepted += 1
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every notification queued before this call is delivered or given up on."""
        with self._lock:
            target = self._accepted
        deadline = time.monotonic() + timeout
        with self._done:
            while self._finished < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued for up to `timeout` seconds, then stop the workers."""
        self.flush(timeout)
        with self._lock:
            self._stop.set()
            workers = list(self._workers.values())
        for w in workers:
            # A full queue: the worker still stops retrying (it sees _stop), and it is a daemon.
            with contextlib.suppress(queue.Full):
                w.queue.put_nowait(None)
        for w in workers:
            w.thread.join(timeout=1.0)

    def stats(self) -> dict[str, RouteStats]:
        with self._lock:
            return {k: RouteStats(**asdict(v)) for k, v in self._stats.items()}

    def _count(
        self, route: str, *, sent: int = 0, failed: int = 0, attempts: int = 0, error: str = ""
    ) -> None:
        with self._lock:
            s = self._stats[route]
            s.sent += sent
            s.failed += failed
            s.attempts += attempts
            if error:
                s.last_error = error

    def _handled(self) -> None:
        with self._done:
            self._finished += 1
            self._done.notify_all()
