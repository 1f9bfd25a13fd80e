"""The events timeline: portable JSON payloads, transactional writes, filtered reads."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tradeloop.clock import SimulatedClock
from tradeloop.control.events import jsonable, list_events, record_event
from tradeloop.control.manager import Manager
from tradeloop.control.reconciler import Context, Result
from tradeloop.store import Store


def test_payloads_are_stored_as_portable_json(store: Store, clock: SimulatedClock) -> None:
    payload = {
        "sharpe": math.nan,  # PostgreSQL refuses NaN inside JSON
        "edge": -math.inf,
        "hit_rate": np.float32(0.5),
        "n": np.int64(12),
        "as_of": datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
        "window": timedelta(hours=2),
        "folds": (1, 2),
        "nested": {"ok": True, 3: None},
    }
    record_event(store, "trainer", "registered", ts=clock.now(), payload=payload)
    [ev] = list_events(store)
    assert ev.payload == {
        "sharpe": None,
        "edge": None,
        "hit_rate": 0.5,
        "n": 12,
        "as_of": "2024-03-01T09:30:00+00:00",
        "window": 7200.0,
        "folds": [1, 2],
        "nested": {"ok": True, "3": None},
    }


def test_what_cannot_be_stored_is_refused_by_name(lite: Store, clock: SimulatedClock) -> None:
    with pytest.raises(TypeError, match=r"payload\.model: cannot store a object"):
        jsonable({"model": object()}, "payload")
    with pytest.raises(ValueError, match="action is longer than 64"):
        record_event(lite, "trainer", "x" * 65, ts=clock.now())
    with pytest.raises(ValueError, match="version is longer than 32"):
        record_event(lite, "trainer", "registered", ts=clock.now(), version="v" * 33)
    assert list_events(lite) == []


def test_an_event_can_share_the_callers_transaction(lite: Store, clock: SimulatedClock) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), lite.begin() as c:
        record_event(c, "deployer", "rollback", ts=clock.now())
        raise Boom
    assert list_events(lite) == []  # rolled back with the state change it described


def test_list_events_filters_and_keeps_the_newest(store: Store, clock: SimulatedClock) -> None:
    t0 = clock.now()
    for i in range(6):
        record_event(store, "trainer" if i % 2 else "deployer", f"a{i}", ts=t0 + timedelta(i))
    assert [e.action for e in list_events(store, limit=3)] == ["a3", "a4", "a5"]
    assert [e.action for e in list_events(store, controller="trainer")] == ["a1", "a3", "a5"]
    since = list_events(store, since=t0 + timedelta(days=4))
    assert [e.action for e in since] == ["a4", "a5"]
    assert since[0].ts == t0 + timedelta(days=4)


def test_events_emitted_in_a_run_land_in_the_table(lite: Store, clock: SimulatedClock) -> None:
    class Emitter:
        name, interval = "trainer", timedelta(minutes=30)

        def reconcile(self, ctx: Context) -> Result:
            ctx.emit("train", reason="champion older than 7d", trigger="max_age:3")
            ctx.emit("registered", version="4", sharpe=float("nan"))
            return Result(message="registered v4")

    Manager(lite, clock, [Emitter()]).run_once()
    evs = list_events(lite, controller="trainer")
    assert [(e.action, e.version, e.reason) for e in evs] == [
        ("train", None, "champion older than 7d"),
        ("registered", "4", ""),
    ]
    assert evs[0].payload == {"trigger": "max_age:3"} and evs[1].payload == {"sharpe": None}
    assert all(e.ts == clock.now() for e in evs)
