"""The reconciler contract: Result, TerminalError, and the Context a run gets."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import pytest

from tradeloop.clock import SimulatedClock
from tradeloop.control.events import list_events
from tradeloop.control.reconciler import Context, Result, TerminalError
from tradeloop.errors import TradeloopError
from tradeloop.store import Store


def test_result_defaults_to_the_interval_and_is_frozen() -> None:
    r = Result()
    assert r.requeue_after is None and r.message == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.message = "x"  # type: ignore[misc]
    assert Result(timedelta(0)).requeue_after == timedelta(0)  # "as soon as possible" is fine


def test_a_negative_requeue_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Result(timedelta(seconds=-1))


def test_terminal_error_is_one_of_ours() -> None:
    assert issubclass(TerminalError, TradeloopError)


def test_emit_stamps_the_clock_and_the_controller(lite: Store, clock: SimulatedClock) -> None:
    ctx = Context("deployer", clock, lite, logging.getLogger("t"))
    ctx.emit("promote", version=7, reason="canary passed", step=3, p_value=0.01)
    clock.advance(timedelta(minutes=5))
    ctx.emit("noop")
    first, second = list_events(lite)
    assert (first.controller, first.action, first.version, first.reason) == (
        "deployer",
        "promote",
        "7",
        "canary passed",
    )
    assert first.payload == {"step": 3, "p_value": 0.01}
    assert second.ts - first.ts == timedelta(minutes=5) and second.version is None
