"""The long-lived notifier: retries that outlive a monitor cycle, once per transition, the
Alertmanager API v2 route, and webhook URLs by reference."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.monitoring.test_alerts import Hook, rule
from tradeloop.clock import SimulatedClock
from tradeloop.errors import BadInput
from tradeloop.monitoring.alerts import AlertEngine
from tradeloop.monitoring.references import (
    literal_url_routes,
    resolve_reference,
    resolve_routes,
)
from tradeloop.monitoring.routes import Notifier
from tradeloop.spec import WebhookRoute
from tradeloop.store import Store


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def lite(sqlite_url: str, clock: SimulatedClock) -> Iterator[Store]:
    s = Store.open(sqlite_url, clock)
    yield s
    s.close()


def test_retries_outlive_the_cycle_that_queued_them(lite: Store, clock: SimulatedClock) -> None:
    h = Hook(statuses=[503, 503, 503, 200])
    try:
        hooks = {"hook": WebhookRoute.model_validate({"url": h.url, "retries": 5})}
        notifier = Notifier(hooks, backoff=0.05)
        # cycle 1: the alert fires; the engine (a monitor run) ends while delivery still fails
        first = AlertEngine(lite, clock, [rule()], hooks, labels={"m": "x"}, notifier=notifier)
        assert [t.state for t in first.evaluate({"hit_rate": 0.4})] == ["firing"]
        del first
        # cycle 2: a new engine on the same long-lived notifier; nothing new to announce
        clock.advance(timedelta(hours=1))
        second = AlertEngine(lite, clock, [rule()], hooks, labels={"m": "x"}, notifier=notifier)
        assert second.evaluate({"hit_rate": 0.4}) == []
        assert notifier.flush(10)
        stats = notifier.stats()["hook"]
        assert (stats.attempts, stats.sent, stats.failed) == (4, 1, 0)
        assert len(h.bodies) == 1 and h.bodies[0]["status"] == "firing"
        notifier.close()
    finally:
        h.close()


def test_a_dedupe_key_is_delivered_once(hook: Hook) -> None:
    notifier = Notifier({"hook": WebhookRoute(url=hook.url)}, backoff=0.01)
    assert notifier.send("hook", {"text": "a"}, key="fp:firing:t0")
    assert not notifier.send("hook", {"text": "a again"}, key="fp:firing:t0")
    assert notifier.send("hook", {"text": "b"}, key="fp:resolved:t0")
    assert notifier.flush(10)
    assert [b["text"] for b in hook.bodies] == ["a", "b"]
    assert notifier.stats()["hook"].duplicates == 1
    notifier.close()


def test_alertmanager_route_posts_api_v2_alerts_and_resends_while_firing(
    lite: Store, clock: SimulatedClock, hook: Hook
) -> None:
    base = hook.url.removesuffix("/hook")
    hooks = {"am": WebhookRoute.model_validate({"url": base, "kind": "alertmanager"})}
    notifier = Notifier(hooks, backoff=0.01)
    eng = AlertEngine(
        lite, clock, [rule(routes=["am"])], hooks, labels={"model": "demo"}, notifier=notifier
    )
    eng.evaluate({"hit_rate": 0.4})  # fires
    clock.advance(timedelta(minutes=5))
    eng.evaluate({"hit_rate": 0.4})  # still firing: re-sent, as Prometheus does
    clock.advance(timedelta(minutes=5))
    eng.evaluate({"hit_rate": 0.6})  # resolves
    assert notifier.flush(10)
    assert len(hook.bodies) == 3
    for body in hook.bodies:
        assert isinstance(body, list) and len(body) == 1  # API v2: a list of alerts
    fired, again, resolved = (b[0] for b in hook.bodies)
    assert fired["labels"] == {
        "model": "demo",
        "alertname": "hit_rate_decay",
        "severity": "warning",
    }
    assert "endsAt" not in fired and fired["startsAt"] == again["startsAt"]
    assert resolved["endsAt"] > resolved["startsAt"]
    assert "hit_rate" in fired["annotations"]["summary"]
    notifier.close()


def test_urls_by_reference(tmp_path: Path) -> None:
    env = {"SLACK_HOOK": "https://hooks.example/T000/B000"}
    assert resolve_reference("${SLACK_HOOK}", tmp_path, env=env) == env["SLACK_HOOK"]
    (tmp_path / "hook.url").write_text("https://hooks.example/from-file\n")
    assert resolve_reference("hook.url", tmp_path, env={}) == "https://hooks.example/from-file"
    secret = f"file:{tmp_path / 'hook.url'}"  # the `file:` form names the same file
    assert resolve_reference(secret, tmp_path, env={}) == "https://hooks.example/from-file"
    assert resolve_reference("http://127.0.0.1:9/x", tmp_path, env={}) == "http://127.0.0.1:9/x"
    with pytest.raises(BadInput, match="environment variable NOPE is not set"):
        resolve_reference("${NOPE}", tmp_path, env={})
    with pytest.raises(BadInput, match="neither a URL"):
        resolve_reference("missing.url", tmp_path, env={})
    (tmp_path / "bad.url").write_text("not a url")
    with pytest.raises(BadInput, match="does not hold an http"):
        resolve_reference("bad.url", tmp_path, env={})
    routes = {"ops": WebhookRoute(url="${SLACK_HOOK}"), "lit": WebhookRoute(url="https://x/y")}
    resolved = resolve_routes(routes, tmp_path, env=env)
    assert resolved["ops"].url == env["SLACK_HOOK"] and resolved["lit"].url == "https://x/y"
    assert literal_url_routes(routes) == ["lit"]
    with pytest.raises(BadInput, match=r"webhooks\.ops\.url"):
        resolve_routes(routes, tmp_path, env={})
