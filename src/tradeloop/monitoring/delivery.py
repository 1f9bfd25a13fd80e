"""Delivering alert notifications: one long-lived notifier per process, one worker per route.

`Notifier.send` never blocks: it puts the body on the route's bounded queue (a full queue
counts a drop) and returns. Each route drains on its own `background.Worker`, so a dead or
hanging receiver delays only its own route. A failed attempt (connection error, timeout, 5xx,
408, 429) is not slept on: the job is rescheduled after an exponential backoff and the worker
moves on, so retries survive any number of monitor cycles for as long as the process lives.
Other 4xx are the receiver refusing the body, and retrying cannot help.

Each body may carry a dedupe key (the alert's fingerprint, state and start): a key queued or
delivered before is ignored, so a transition is announced once per route even when the
engine that found it is evaluated again. Backoff runs on wall time, not the injected clock: it
paces a network, not the market.

Route kinds: `webhook` (Slack-compatible, with Alertmanager's webhook fields too) posts the
body to the URL; `alertmanager` posts its `alerts` to `<url>/api/v2/alerts`, Alertmanager's own
API, so teams route through the Alertmanager they run.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from tradeloop.background import Worker
from tradeloop.spec import WebhookRoute

LOGGED = "log"  # the log route's name (routes.LOG_ROUTE)

__all__ = ["Notifier", "RouteStats"]

log = logging.getLogger("tradeloop.monitoring.routes")

_RETRY_STATUS = frozenset({408, 429})
_DEDUPE_MEMORY = 10_000  # keys remembered per route


@dataclass
class RouteStats:
    """Delivery counters of one route (the gauges module exports them)."""

    sent: int = 0  # notifications delivered (2xx)
    failed: int = 0  # notifications given up on after every attempt
    dropped: int = 0  # notifications refused because the queue was full
    attempts: int = 0  # HTTP requests made
    duplicates: int = 0  # notifications ignored: their dedupe key was seen before
    last_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Job:
    payload: dict[str, Any]
    attempt: int = 0
    due: float = 0.0  # time.monotonic() of the next attempt
    error: str = ""


@dataclass
class _Route:
    notifier: Notifier
    name: str
    spec: WebhookRoute
    queue: queue.Queue[_Job] = field(init=False)
    retrying: list[_Job] = field(default_factory=list)
    seen: collections.OrderedDict[str, None] = field(default_factory=collections.OrderedDict)
    worker: Worker = field(init=False)
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.queue = queue.Queue(maxsize=self.notifier.max_queue)
        self.client = httpx.Client(
            timeout=self.spec.timeout.total_seconds(), headers={"user-agent": "tradeloop-monitor"}
        )
        self.worker = Worker(self.drain, name=f"tradeloop-notify-{self.name}", interval=0.1)
        self.worker.start()

    @property
    def target(self) -> str:
        if self.spec.kind == "alertmanager":
            return self.spec.url.rstrip("/") + "/api/v2/alerts"
        return self.spec.url

    def body(self, payload: dict[str, Any]) -> Any:
        if self.spec.kind == "alertmanager":
            return [_am_alert(a) for a in payload.get("alerts", [])]
        return payload

    def drain(self) -> None:
        """Move queued jobs in, then try every job that is due; reschedule the failures."""
        while True:
            try:
                self.retrying.append(self.queue.get_nowait())
            except queue.Empty:
                break
        now = time.monotonic()
        closing = self.notifier.closing
        due = [j for j in self.retrying if closing or j.due <= now]
        self.retrying = [j for j in self.retrying if not closing and j.due > now]
        for job in due:
            if self.notifier.closing:
                self._give_up(job)
                continue
            try:
                retry = self._attempt(job)
            except Exception:  # a bug must not kill the route's worker
                log.exception("route %s: delivery crashed", self.name)
                job.error = "internal error"
                retry = False
            if retry and job.attempt <= self.spec.retries:
                n = self.notifier
                job.due = time.monotonic() + min(n.backoff * 2 ** (job.attempt - 1), n.max_backoff)
                self.retrying.append(job)
            elif job.error:
                self._give_up(job)

    def _attempt(self, job: _Job) -> bool:
        """One request; True when it failed in a way worth retrying."""
        n = self.notifier
        job.attempt += 1
        n._count(self.name, attempts=1)
        try:
            resp = self.client.post(self.target, json=self.body(job.payload))
        except httpx.HTTPError as exc:
            job.error = f"{type(exc).__name__}: {exc}"
            return True
        if resp.is_success:
            job.error = ""
            n._count(self.name, sent=1)
            n._handled()
            return False
        job.error = f"HTTP {resp.status_code}"
        return resp.status_code >= 500 or resp.status_code in _RETRY_STATUS

    def _give_up(self, job: _Job) -> None:
        n = self.notifier
        n._count(self.name, failed=1, error=job.error or "closed before delivery")
        log.warning(
            "route %s (%s): giving up after %d attempt(s): %s",
            self.name,
            self.spec.kind,
            job.attempt,
            job.error or "the notifier closed",
        )
        n._handled()

    @property
    def busy(self) -> bool:
        return bool(self.retrying) or not self.queue.empty()


def _am_alert(a: Mapping[str, Any]) -> dict[str, Any]:
    """One alert in Alertmanager's API v2 shape (an open `endsAt` is left out)."""
    out = {
        "labels": dict(a.get("labels", {})),
        "annotations": dict(a.get("annotations", {})),
        "startsAt": a.get("startsAt"),
        "generatorURL": a.get("generatorURL") or "",
    }
    if a.get("status") == "resolved":
        out["endsAt"] = a.get("endsAt")
    return out


class Notifier:
    """Queues notifications and delivers them from one background worker per route."""

    def __init__(
        self,
        webhooks: Mapping[str, WebhookRoute],
        *,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_queue: int = 1000,
    ) -> None:
        self.webhooks = dict(webhooks)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_queue = max_queue
        # the log route too, so every process has the delivery series from its first scrape
        self._stats = {name: RouteStats() for name in (LOGGED, *self.webhooks)}
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()
        self._done = threading.Condition(threading.Lock())
        self._accepted = 0
        self._finished = 0
        self.closing = False

    def send(self, route: str, payload: dict[str, Any], key: str | None = None) -> bool:
        """Queue one body for `route`; never blocks. False when the route is unknown, the
        notifier is closed, the key was seen before (a duplicate) or the queue is full."""
        if route not in self.webhooks:
            log.error("alert route %r is not a configured webhook", route)
            return False
        with self._lock:
            if self.closing:
                return False
            r = self._routes.get(route)
            if r is None:
                r = self._routes[route] = _Route(self, route, self.webhooks[route])
            if key is not None:
                if key in r.seen:
                    self._stats[route].duplicates += 1
                    return False
                r.seen[key] = None
                while len(r.seen) > _DEDUPE_MEMORY:
                    r.seen.popitem(last=False)
            try:
                r.queue.put_nowait(_Job(payload))
            except queue.Full:
                self._stats[route].dropped += 1
                log.warning("route %s: queue full, notification dropped", route)
                return False
            self._accepted += 1
        r.worker.wake()
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
                self._done.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued for up to `timeout` seconds, then give up on the rest."""
        self.flush(timeout)
        with self._lock:
            self.closing = True
            routes = list(self._routes.values())
        for r in routes:
            r.worker.stop(timeout=max(1.0, r.spec.timeout.total_seconds() + 1))
            r.drain()  # anything still pending is given up on (closing) and counted
            r.client.close()

    def logged(self) -> None:
        """Count one notification written to the log route (it cannot fail or retry)."""
        self._count(LOGGED, sent=1, attempts=1)

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
