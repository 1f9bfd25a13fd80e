"""Alert rules: Prometheus-style pending/firing/resolved in the store, real webhooks on loopback."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from tradeloop.clock import SimulatedClock
from tradeloop.errors import BadInput
from tradeloop.monitoring.alerts import AlertEngine, fingerprint, metric_value
from tradeloop.monitoring.routes import Notifier
from tradeloop.spec import AlertRule, MonitoringSpec, WebhookRoute
from tradeloop.store import Store
from tradeloop.store.alerts import firing_alerts
from tradeloop.store.tables import alerts


class Hook:
    """A real HTTP server on 127.0.0.1 that records JSON bodies and answers scripted statuses.

    `hold=True`: every request waits until the test sets `release`, so a receiver that hangs is
    an event the test controls, not a length of time. `requested` is set at the first request,
    `received` at the first recorded body.
    """

    def __init__(self, statuses: list[int] | None = None, *, hold: bool = False) -> None:
        self.statuses = list(statuses or [])
        self.bodies: list[dict[str, Any]] = []
        self.hits = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.requested = threading.Event()
        self.received = threading.Event()
        if not hold:
            self.release.set()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with hook.lock:
                    hook.hits += 1
                    status = hook.statuses.pop(0) if hook.statuses else 200
                hook.requested.set()
                hook.release.wait(timeout=60)  # a safety net only: tests release or close
                if status == 200:
                    with hook.lock:
                        hook.bodies.append(json.loads(body))
                    hook.received.set()
                try:
                    self.send_response(status)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client timed out and went away

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def lite(sqlite_url: str, clock: SimulatedClock) -> Iterator[Store]:
    """SQLite only: the webhook tests are about HTTP, and the `store` fixture (SQLite and
    PostgreSQL) already covers the state machine on both databases."""
    s = Store.open(sqlite_url, clock)
    yield s
    s.close()


def dead_url() -> str:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def rule(**kw: Any) -> AlertRule:
    base: dict[str, Any] = {
        "name": "hit_rate_decay",
        "metric": "hit_rate",
        "op": "<",
        "value": 0.48,
        "routes": ["hook"],
    }
    return AlertRule.model_validate({**base, **kw})


def engine(
    store: Store, clock: SimulatedClock, rules: list[AlertRule], url: str, **route: Any
) -> AlertEngine:
    hooks = {"hook": WebhookRoute.model_validate({"url": url, "timeout": "2s", **route})}
    return AlertEngine(
        store, clock, rules, hooks, labels={"model": "demo"}, notifier=Notifier(hooks, backoff=0.01)
    )


def rows(store: Store) -> list[Any]:
    with store.engine.connect() as c:
        return c.execute(select(alerts).order_by(alerts.c.id)).all()


def test_for_duration_pending_then_firing_then_resolved(
    store: Store, clock: SimulatedClock, hook: Hook
) -> None:
    eng = engine(store, clock, [rule(**{"for": "1h"})], hook.url)
    t0 = clock.now()
    (t,) = eng.evaluate({"hit_rate": 0.45})
    assert (t.previous, t.state) == ("inactive", "pending")
    clock.advance(timedelta(minutes=59))
    assert eng.evaluate({"hit_rate": 0.44}) == []
    assert eng.flush(5) and hook.bodies == []  # pending is not announced

    clock.advance(timedelta(minutes=1))
    (t,) = eng.evaluate({"hit_rate": 0.43})
    assert (t.previous, t.state, t.value) == ("pending", "firing", 0.43)
    assert t.started_at == t0 and t.fired_at == clock.now()
    clock.advance(timedelta(minutes=5))
    assert eng.evaluate({"hit_rate": 0.40}) == []  # still firing: de-duplicated, no new row
    assert eng.firing() == {"hit_rate_decay"}

    clock.advance(timedelta(minutes=5))
    (t,) = eng.evaluate({"hit_rate": 0.55})
    assert (t.previous, t.state) == ("firing", "resolved")
    assert eng.flush(5)
    assert [b["status"] for b in hook.bodies] == ["firing", "resolved"]
    fired, resolved = hook.bodies
    assert fired["text"].startswith("[FIRING] hit_rate_decay")
    assert fired["attachments"][0]["title"] == "[FIRING] hit_rate_decay"
    (a,) = fired["alerts"]
    assert a["labels"] == {"alertname": "hit_rate_decay", "model": "demo", "severity": "warning"}
    assert a["startsAt"].startswith("2024-03-01T10:30:00") and a["endsAt"] == "0001-01-01T00:00:00Z"
    assert fired["annotations"]["summary"] == "hit_rate is 0.43 (hit_rate < 0.48 for 1h)"
    assert resolved["endsAt"].startswith("2024-03-01T10:40:00")
    assert resolved["alerts"][0]["fingerprint"] == a["fingerprint"]

    (row,) = rows(store)
    assert (row.state, row.value) == ("resolved", 0.55)
    audit = store.audit.list()
    assert [(e.actor, e.action, e.subject) for e in audit] == [
        ("monitor", "alert.firing", "alert:hit_rate_decay"),
        ("monitor", "alert.resolved", "alert:hit_rate_decay"),
    ]
    assert store.audit.verify().ok
    eng.close()


def test_for_zero_fires_at_once_and_each_episode_is_a_new_row(
    lite: Store, clock: SimulatedClock, hook: Hook
) -> None:
    eng = engine(lite, clock, [rule()], hook.url)
    assert [t.state for t in eng.evaluate({"hit_rate": 0.4})] == ["firing"]
    clock.advance(timedelta(minutes=1))
    assert [t.state for t in eng.evaluate({"hit_rate": 0.6})] == ["resolved"]
    clock.advance(timedelta(minutes=1))
    assert [t.state for t in eng.evaluate({"hit_rate": 0.4})] == ["firing"]
    got = rows(lite)
    assert [r.state for r in got] == ["resolved", "firing"]
    assert len({r.fingerprint for r in got}) == 1
    assert eng.flush(5) and [b["status"] for b in hook.bodies] == ["firing", "resolved", "firing"]
    eng.close()


def test_no_data_never_fires_and_never_clears(
    lite: Store, clock: SimulatedClock, hook: Hook
) -> None:
    eng = engine(lite, clock, [rule(**{"for": "10m"})], hook.url)
    assert eng.evaluate({"hit_rate": None}) == [] and rows(lite) == []
    assert eng.evaluate({}) == [] and eng.evaluate({"hit_rate": float("nan")}) == []
    eng.evaluate({"hit_rate": 0.4})  # pending
    clock.advance(timedelta(hours=1))
    assert eng.evaluate({"hit_rate": None}) == []  # `for` has passed, but no data: no fire
    assert [r.state for r in rows(lite)] == ["pending"]
    (t,) = eng.evaluate({"hit_rate": 0.41})  # data again, still breaching: fires
    assert t.state == "firing"
    clock.advance(timedelta(hours=1))
    assert eng.evaluate({"hit_rate": None}) == []  # and no data does not clear it
    assert eng.firing() == {"hit_rate_decay"}
    assert rows(lite)[0].last_eval_at is not None
    eng.close()


def test_pending_that_clears_goes_inactive_silently(
    lite: Store, clock: SimulatedClock, hook: Hook
) -> None:
    eng = engine(lite, clock, [rule(**{"for": "1h"})], hook.url)
    eng.evaluate({"hit_rate": 0.4})
    clock.advance(timedelta(minutes=10))
    (t,) = eng.evaluate({"hit_rate": 0.5})
    assert (t.previous, t.state, t.notifies) == ("pending", "inactive", False)
    assert eng.open_alerts() == [] and lite.audit.list() == []
    assert eng.flush(5) and hook.hits == 0
    # a new breach starts a fresh `for` clock
    clock.advance(timedelta(minutes=10))
    eng.evaluate({"hit_rate": 0.4})
    clock.advance(timedelta(minutes=50))
    assert eng.evaluate({"hit_rate": 0.4}) == []
    eng.close()


def test_state_survives_a_restart(store: Store, clock: SimulatedClock, hook: Hook) -> None:
    first = engine(store, clock, [rule(**{"for": "30m"})], hook.url)
    first.evaluate({"hit_rate": 0.4})
    first.close()
    clock.advance(timedelta(minutes=30))
    second = engine(store, clock, [rule(**{"for": "30m"})], hook.url)
    assert [t.state for t in second.evaluate({"hit_rate": 0.4})] == ["firing"]
    assert len(rows(store)) == 1
    second.close()


def test_server_errors_are_retried_with_backoff(lite: Store, clock: SimulatedClock) -> None:
    h = Hook(statuses=[500, 500, 200])
    try:
        eng = engine(lite, clock, [rule()], h.url, retries=2)
        eng.evaluate({"hit_rate": 0.4})
        assert eng.flush(10)
        assert h.hits == 3 and len(h.bodies) == 1
        stats = eng.notifier.stats()["hook"]
        assert (stats.attempts, stats.sent, stats.failed) == (3, 1, 0)
        eng.close()
    finally:
        h.close()


def test_client_errors_are_not_retried(lite: Store, clock: SimulatedClock) -> None:
    h = Hook(statuses=[400, 200])
    try:
        eng = engine(lite, clock, [rule()], h.url, retries=3)
        eng.evaluate({"hit_rate": 0.4})
        assert eng.flush(10)
        stats = eng.notifier.stats()["hook"]
        assert (h.hits, stats.attempts, stats.failed, stats.last_error) == (1, 1, 1, "HTTP 400")
        eng.close()
    finally:
        h.close()


def test_dead_webhook_never_blocks_evaluation(lite: Store, clock: SimulatedClock) -> None:
    hooks = {"hook": WebhookRoute.model_validate({"url": dead_url(), "retries": 2})}
    # each retry first waits out the backoff (capped at max_backoff = 10 s): a delivery made
    # inline could not have given up before evaluate returned
    eng = AlertEngine(lite, clock, [rule()], hooks, notifier=Notifier(hooks, backoff=60))
    (t,) = eng.evaluate({"hit_rate": 0.4})
    assert t.state == "firing"
    stats = eng.notifier.stats()["hook"]
    assert (stats.sent, stats.failed) == (0, 0)
    eng.close(timeout=0)  # stops the retries: the notification is given up on
    assert eng.notifier.flush(10) and eng.notifier.stats()["hook"].failed == 1


def test_dead_webhook_is_retried_then_given_up(
    lite: Store, clock: SimulatedClock, caplog: pytest.LogCaptureFixture
) -> None:
    eng = engine(lite, clock, [rule()], dead_url(), retries=2)
    with caplog.at_level(logging.WARNING, logger="tradeloop.monitoring.routes"):
        (t,) = eng.evaluate({"hit_rate": 0.4})
        assert t.state == "firing"
        assert eng.flush(10)
    stats = eng.notifier.stats()["hook"]
    assert (stats.attempts, stats.sent, stats.failed) == (3, 0, 1)
    assert "ConnectError" in stats.last_error
    assert any("giving up after 3 attempt(s)" in r.getMessage() for r in caplog.records)
    eng.close()


def test_a_hanging_webhook_delays_only_its_own_route(
    lite: Store, clock: SimulatedClock, hook: Hook
) -> None:
    slow = Hook(hold=True)
    try:
        hooks = {
            "slow": WebhookRoute.model_validate({"url": slow.url, "timeout": "60s", "retries": 0}),
            "fast": WebhookRoute(url=hook.url),
        }
        eng = AlertEngine(
            lite,
            clock,
            [rule(routes=["slow", "fast", "log"])],
            hooks,
            notifier=Notifier(hooks, backoff=0.01),
        )
        eng.evaluate({"hit_rate": 0.4})
        # evaluate returned while the slow receiver holds its request: nothing was sent inline
        assert (eng.notifier.stats()["slow"].sent, eng.notifier.stats()["slow"].failed) == (0, 0)
        assert hook.received.wait(10) and slow.requested.wait(10)
        assert len(hook.bodies) == 1  # the fast route delivered while the slow one hangs
        assert not eng.flush(0)  # the slow route is still trying
        slow.release.set()
        assert eng.flush(10)
        stats = eng.notifier.stats()
        assert stats["slow"].sent == 1 and stats["fast"].sent == 1
        eng.close()
    finally:
        slow.close()


def test_a_hanging_webhook_times_out_and_is_retried(lite: Store, clock: SimulatedClock) -> None:
    slow = Hook(hold=True)  # never released before the end: every attempt times out
    try:
        eng = engine(lite, clock, [rule()], slow.url, timeout="0.2s", retries=1)
        eng.evaluate({"hit_rate": 0.4})
        assert eng.flush(10)
        stats = eng.notifier.stats()["hook"]
        assert (stats.failed, stats.attempts, stats.sent) == (1, 2, 0)
        assert "Timeout" in stats.last_error
        eng.close()
    finally:
        slow.close()


def test_feature_drift_rules_are_per_feature(
    lite: Store, clock: SimulatedClock, hook: Hook
) -> None:
    rules = [
        rule(name="drift_ret_1", metric="feature_drift", feature="ret_1", op=">=", value=1),
        rule(name="drift_vol", metric="feature_drift", feature="vol_20", op=">=", value=1),
    ]
    eng = engine(lite, clock, rules, hook.url)
    assert metric_value(rules[0], {"feature_drift:ret_1": 1.0}) == 1.0
    (t,) = eng.evaluate({"feature_drift": {"ret_1": 1.0, "vol_20": 0.0}})
    assert t.rule == "drift_ret_1" and t.labels["feature"] == "ret_1"
    assert t.fingerprint == fingerprint("drift_ret_1", {"model": "demo", "feature": "ret_1"})
    eng.close()


def test_a_rule_removed_from_the_spec_has_its_alert_resolved(
    store: Store, clock: SimulatedClock, hook: Hook
) -> None:
    eng = engine(store, clock, [rule()], hook.url)
    eng.evaluate({"hit_rate": 0.4})
    eng.close()
    other = AlertEngine(store, clock, [], labels={"model": "other"})  # another scope: untouched
    assert other.evaluate({}) == []
    assert [r.state for r in rows(store)] == ["firing"]
    again = AlertEngine(store, clock, [], labels={"model": "demo"})
    (t,) = again.evaluate({})
    assert (t.rule, t.state) == ("hit_rate_decay", "resolved")
    assert store.audit.list()[-1].payload["reason"] == "rule removed"
    assert again.open_alerts() == []
    assert [r.rule for r in again.recent()] == ["hit_rate_decay"]


def test_from_spec_and_bad_routes() -> None:
    spec = MonitoringSpec.model_validate(
        {"alerts": [{"name": "x", "metric": "sharpe", "value": 0, "op": "<", "routes": ["log"]}]}
    )
    clock = SimulatedClock()
    store = Store.open("sqlite://", clock)
    eng = AlertEngine.from_spec(store, clock, spec)
    assert [t.state for t in eng.evaluate({"sharpe": -1.0})] == ["firing"]
    with pytest.raises(BadInput, match="unknown webhook"):
        AlertEngine(store, clock, [rule(routes=["nowhere"])])
    store.close()


def test_store_queries_read_what_the_engine_wrote(
    lite: Store, clock: SimulatedClock, hook: Hook
) -> None:
    eng = engine(lite, clock, [rule(), rule(name="sharpe_low", metric="sharpe", value=0)], hook.url)
    eng.evaluate({"hit_rate": 0.4, "sharpe": 1.0})
    other = AlertEngine(lite, clock, [rule(routes=["log"])], labels={"model": "other"})
    other.evaluate({"hit_rate": 0.4})
    assert [(r.rule, r.labels["model"]) for r in firing_alerts(lite)] == [
        ("hit_rate_decay", "demo"),
        ("hit_rate_decay", "other"),
    ]
    assert [r.rule for r in firing_alerts(lite, labels={"model": "other"})] == ["hit_rate_decay"]
    assert eng.firing() == {"hit_rate_decay"}
    eng.close()
