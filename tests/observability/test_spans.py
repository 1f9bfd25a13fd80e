"""Spans for each reconcile cycle and for a job's phases (training's data … register)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tradeloop.clock import SimulatedClock
from tradeloop.control.manager import Manager
from tradeloop.control.reconciler import Context, Result
from tradeloop.observability import tracing
from tradeloop.store import Store


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure_tracing(exporter=exporter, batch=False)
    yield exporter
    tracing.shutdown_tracing()


class Boom:
    name, interval = "deployer", timedelta(minutes=5)

    def reconcile(self, ctx: Context) -> Result:
        raise RuntimeError("registry down")


class Fine:
    name, interval = "monitor", timedelta(minutes=5)

    def reconcile(self, ctx: Context) -> Result:
        with tracing.span("inner work"):
            return Result()


def test_each_reconcile_cycle_is_a_span(
    spans: InMemorySpanExporter, sqlite_url: str, clock: SimulatedClock
) -> None:
    store = Store.open(sqlite_url, clock)
    try:
        Manager(store, clock, [Boom(), Fine()]).run_once()
    finally:
        store.close()
    got = {s.name: s for s in spans.get_finished_spans()}
    assert got["reconcile deployer"].status.is_ok is False
    assert got["reconcile deployer"].events[0].name == "exception"
    assert got["reconcile monitor"].attributes["tradeloop.controller"] == "monitor"
    assert got["inner work"].parent.span_id == got["reconcile monitor"].context.span_id


def test_phases_are_children_of_the_job(spans: InMemorySpanExporter) -> None:
    job = tracing.Phases("train demo", **{"tradeloop.pipeline": "demo"})
    for phase in ("data", "features", "fold 1", "backtest", "register"):
        job.step(phase)
    job.close()
    finished = spans.get_finished_spans()
    names = [s.name for s in finished]
    assert names == ["data", "features", "fold 1", "backtest", "register", "train demo"]
    root = finished[-1]
    assert all(s.parent.span_id == root.context.span_id for s in finished[:-1])
    assert tracing.tracer() is not None and tracing.current_trace_id() == ""  # nothing leaked


def test_phases_cost_nothing_when_off() -> None:
    assert tracing.tracer() is None
    job = tracing.Phases("train demo")
    job.step("data")
    job.close()
