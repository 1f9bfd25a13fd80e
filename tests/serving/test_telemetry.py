"""W3C traceparent in, spans request → model run out, the trace id in the JSON logs, the
access log and the prediction log; tracing off leaves no trace."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tradeloop.observability import tracing
from tradeloop.observability.logs import configure_logging
from tradeloop.spec import ServingSpec

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.configure_tracing(exporter=exporter, batch=False)
    yield exporter
    tracing.shutdown_tracing()


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buf = io.StringIO()
    configure_logging("json", "INFO", stream=buf)
    yield buf
    root.handlers[:] = handlers
    root.setLevel(level)


def _rows(state: Path) -> list[tuple[str, str]]:
    glob = state / "predictions" / "**" / "*.parquet"
    return duckdb.sql(
        f"select request_id, trace_id from read_parquet('{glob}', hive_partitioning=true,"
        " union_by_name=true)"
    ).fetchall()


def test_traceparent_is_continued_and_lands_in_logs_and_the_prediction_log(
    spans: InMemorySpanExporter,
    json_logs: io.StringIO,
    make_app: Callable[..., Any],
    live: Any,
    deployer: Callable[..., None],
    tmp_path: Path,
) -> None:
    deployer(("champion", "1", "live", 100))
    app = make_app(serving=ServingSpec(access_log="full"))
    url = live(app).url
    r = httpx.post(
        f"{url}/invocations",
        json={"inputs": [[0.1, 0.2, 0.3]]},
        headers={"traceparent": TRACEPARENT, "x-request-id": "tr-1"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["traceparent"].split("-")[1] == TRACE  # our span, same trace
    finished = {s.name: s for s in spans.get_finished_spans()}
    server = finished["POST /invocations"]
    run = finished["model.run"]
    assert format(server.context.trace_id, "032x") == TRACE
    assert server.parent is not None and format(server.parent.span_id, "016x") == PARENT
    assert run.parent is not None and run.parent.span_id == server.context.span_id
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["tradeloop.variant"] == "champion"
    lines = [json.loads(x) for x in json_logs.getvalue().splitlines()]
    access = [x for x in lines if x["logger"] == "tradeloop.access"]
    assert len(access) == 1 and access[0]["trace_id"] == TRACE
    assert access[0]["request_id"] == "tr-1" and access[0]["status"] == 200
    assert access[0]["pipeline"] == "demo" and access[0]["version"] == "1"
    assert access[0]["span_id"] == format(server.context.span_id, "016x")
    app.state.gateway.predlog.flush(timeout=10)
    assert ("tr-1", TRACE) in _rows(tmp_path / "state")


def test_the_shadow_span_is_a_child_of_its_request_in_the_same_trace(
    spans: InMemorySpanExporter,
    make_app: Callable[..., Any],
    live: Any,
    deployer: Callable[..., None],
) -> None:
    deployer(("champion", "1", "live", 100), ("challenger", "2", "shadow", 0))
    app = make_app()
    url = live(app).url
    for request_id, header in (("sh-1", TRACEPARENT), ("sh-2", None)):
        headers = {"x-request-id": request_id}
        if header:
            headers["traceparent"] = header
        r = httpx.post(f"{url}/invocations", json={"inputs": [[0.1, 0.2, 0.3]]}, headers=headers)
        assert r.status_code == 200, r.text
    assert app.state.gateway.shadow.join(timeout=10)
    finished = spans.get_finished_spans()
    servers = {
        s.attributes["tradeloop.request_id"]: s for s in finished if s.name == "POST /invocations"
    }
    shadows = {
        s.attributes["tradeloop.request_id"]: s for s in finished if s.name == "shadow.score"
    }
    assert set(shadows) == {"sh-1", "sh-2"}  # a request without a traceparent is traced too
    for request_id, shadow in shadows.items():
        server = servers[request_id]
        assert shadow.context.trace_id == server.context.trace_id
        assert shadow.parent is not None and shadow.parent.span_id == server.context.span_id
        assert shadow.attributes["tradeloop.variant"] == "challenger"
        assert shadow.attributes["tradeloop.version"] == "2"
    assert format(shadows["sh-1"].context.trace_id, "032x") == TRACE
    assert shadows["sh-1"].context.trace_id != shadows["sh-2"].context.trace_id


def test_without_a_traceparent_a_new_trace_starts(
    spans: InMemorySpanExporter,
    make_app: Callable[..., Any],
    live: Any,
    deployer: Callable[..., None],
) -> None:
    deployer(("champion", "1", "live", 100))
    url = live(make_app()).url
    r = httpx.post(f"{url}/invocations", json={"inputs": [[0.1, 0.2, 0.3]]})
    [server] = [s for s in spans.get_finished_spans() if s.name == "POST /invocations"]
    assert server.parent is None
    assert r.headers["traceparent"].split("-")[1] == format(server.context.trace_id, "032x")


def test_tracing_off_adds_nothing(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None], tmp_path: Path
) -> None:
    assert tracing.tracer() is None
    deployer(("champion", "1", "live", 100))
    app = make_app()
    url = live(app).url
    r = httpx.post(
        f"{url}/invocations",
        json={"inputs": [[0.1, 0.2, 0.3]]},
        headers={"traceparent": TRACEPARENT, "x-request-id": "off-1"},
    )
    assert r.status_code == 200 and "traceparent" not in r.headers
    app.state.gateway.predlog.flush(timeout=10)
    assert ("off-1", "") in _rows(tmp_path / "state")


def test_sampled_access_log_keeps_errors(json_logs: io.StringIO) -> None:
    from tradeloop.serving.access_log import AccessLog

    class Never:
        def random(self) -> float:
            return 0.999

    acc = AccessLog(ServingSpec(access_log="sampled", access_log_sample=0.01), Never())  # type: ignore[arg-type]
    kw = {"pipeline": "p", "version": "1", "variant": "champion", "request_id": "r"}
    acc.record("/invocations", 200, 0.001, **kw)
    acc.record("/invocations", 503, 0.001, **kw)
    statuses = [json.loads(x)["status"] for x in json_logs.getvalue().splitlines()]
    assert statuses == [503]


def test_env_decides_whether_tracing_is_on() -> None:
    assert not tracing.enabled_by_env({})
    assert tracing.enabled_by_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing.enabled_by_env({"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing.enabled_by_env(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"}
    )


def test_an_unsampled_trace_records_nothing(
    make_app: Callable[..., Any], live: Any, deployer: Callable[..., None]
) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = InMemorySpanExporter()
    tracing.configure_tracing(exporter=exporter, sampler=ALWAYS_OFF, batch=False)
    try:
        deployer(("champion", "1", "live", 100))
        url = live(make_app()).url
        r = httpx.post(f"{url}/invocations", json={"inputs": [[0.1, 0.2, 0.3]]})
        assert r.status_code == 200 and "traceparent" not in r.headers
        assert exporter.get_finished_spans() == ()
    finally:
        tracing.shutdown_tracing()


def test_a_ratio_sampler_follows_the_parent_and_samples_roots(
    monkeypatch: pytest.MonkeyPatch,
    make_app: Callable[..., Any],
    live: Any,
    deployer: Callable[..., None],
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")  # no new roots at all
    exporter = InMemorySpanExporter()
    tracing.configure_tracing(exporter=exporter, batch=False)
    try:
        deployer(("champion", "1", "live", 100))
        url = live(make_app()).url
        body = {"inputs": [[0.1, 0.2, 0.3]]}
        httpx.post(f"{url}/invocations", json=body)  # a root: ratio 0, not sampled
        httpx.post(
            f"{url}/invocations", json=body, headers={"traceparent": TRACEPARENT[:-2] + "00"}
        )
        assert exporter.get_finished_spans() == ()
        r = httpx.post(f"{url}/invocations", json=body, headers={"traceparent": TRACEPARENT})
        assert r.headers["traceparent"].split("-")[1] == TRACE  # the sampled parent is followed
        names = sorted(s.name for s in exporter.get_finished_spans())
        assert names == ["POST /invocations", "model.run"]
    finally:
        tracing.shutdown_tracing()
