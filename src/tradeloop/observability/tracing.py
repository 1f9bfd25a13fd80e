"""OpenTelemetry tracing, configured by the standard OTEL_* variables, off unless asked for.

Tracing is on when an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or `OTEL_TRACES_EXPORTER` names an exporter (`otlp`,
`console`), and `OTEL_SDK_DISABLED` is not true. The SDK reads the rest itself: the sampler
(`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`, e.g. `parentbased_traceidratio` and `0.01`),
the exporter's endpoint, headers and timeout, `OTEL_SERVICE_NAME` and resource attributes.

The provider is ours, not the process-wide global (which OpenTelemetry lets be set once), so
a test can install one with an in-memory exporter and remove it again. When tracing is off,
`tracer()` is None and `span()` a shared no-op: callers test one attribute and do nothing
else, which is why tracing off costs nothing measurable.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from tradeloop.observability import logs

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "Phases",
    "configure_tracing",
    "current_trace_id",
    "enabled_by_env",
    "extract",
    "head_sampled",
    "inject",
    "parent_context",
    "record_span",
    "recording",
    "shutdown_tracing",
    "span",
    "tracer",
]

_provider: TracerProvider | None = None
_tracer: Tracer | None = None
# (ratio, parent-based) when the sampler is a trace-id ratio: the gateway decides a root's
# sampling before it asks the SDK for anything, since the SDK's unsampled span alone costs
# some 15 µs a request, and a 1% sample should cost 1% of that.
_head: tuple[float, bool] | None = None
_random = random.random


def enabled_by_env(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    return bool(endpoint) or exporter in ("otlp", "console")


def configure_tracing(
    service_name: str = "tradeloop",
    *,
    exporter: SpanExporter | None = None,
    sampler: Any = None,
    batch: bool = True,
) -> bool:
    """Install our provider when the environment asks for tracing (or an exporter is given:
    tests). Returns whether tracing is on. Calling again replaces the provider."""
    if exporter is None and not enabled_by_env():
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if exporter is None:
        exporter = _exporter_from_env()
    shutdown_tracing()
    head = None
    if sampler is None:
        head = _ratio_from_env()
        if head is not None:  # we decide roots and follow parents; the SDK records what we pass
            from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

            sampler = ParentBased(ALWAYS_ON)
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource, sampler=sampler)  # None: from OTEL_TRACES_*
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    _install(provider)
    global _head
    _head = head
    return True


def _ratio_from_env() -> tuple[float, bool] | None:
    name = os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if name not in ("traceidratio", "parentbased_traceidratio"):
        return None
    try:
        rate = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
    except ValueError:
        rate = 1.0  # what the SDK does with a bad ratio
    return min(max(rate, 0.0), 1.0), name.startswith("parentbased")


def head_sampled(traceparent: str | None) -> bool:
    """Whether a request with this `traceparent` (or none) may be sampled at all: False means
    skip tracing it entirely. Only a trace-id-ratio sampler says False; any other sampler is
    the SDK's to apply."""
    head = _head
    if head is None:
        return True
    rate, parent_based = head
    if parent_based and traceparent:
        return traceparent.strip()[-2:] in ("01", "03", "05", "07", "09", "0b", "0d", "0f")
    return _random() < rate


def _exporter_from_env() -> SpanExporter:
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*


def _install(provider: TracerProvider | None) -> None:
    global _provider, _tracer
    _provider = provider
    _tracer = provider.get_tracer("tradeloop") if provider is not None else None
    logs.set_span_source(_current_ids if provider is not None else None)


def shutdown_tracing() -> None:
    """Flush and remove our provider (tracing off again)."""
    global _head
    _head = None
    old = _provider
    _install(None)
    if old is not None:
        old.shutdown()


def tracer() -> Tracer | None:
    return _tracer


def _current_ids() -> tuple[str, str] | None:
    sc = _otel_trace().get_current_span().get_span_context()
    if not sc.is_valid:
        return None
    return format(sc.trace_id, "032x"), format(sc.span_id, "016x")


def current_trace_id() -> str:
    """The current span's trace id (32 hex), or "" when none is recording."""
    if _tracer is None:
        return ""
    ids = _current_ids()
    return ids[0] if ids else ""


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Span | None]:
    """A child of the current span while the block runs; nothing at all when tracing is off."""
    t = _tracer
    if t is None:
        yield None
        return
    attrs = {k: v for k, v in attributes.items() if v is not None}
    with t.start_as_current_span(name, attributes=attrs) as s:
        yield s


_propagator: Any = None


def _w3c() -> Any:
    global _propagator
    if _propagator is None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        _propagator = TraceContextTextMapPropagator()
    return _propagator


def extract(headers: Mapping[str, str]) -> Any:
    """An OpenTelemetry context from W3C `traceparent`/`tracestate` headers (lower-case keys);
    no header: an empty context (a new trace), without asking the propagator."""
    if not headers:
        return None
    return _w3c().extract(headers)


def inject(headers: dict[str, str]) -> dict[str, str]:
    """Add the current span's `traceparent` to outgoing headers."""
    _w3c().inject(headers)
    return headers


def recording() -> bool:
    """Whether the current span records (tracing on and this trace sampled)."""
    if _tracer is None:
        return False
    return bool(_otel_trace().get_current_span().is_recording())


def parent_context() -> Any:
    """The current span as the parent of work finished later on another thread (shadow
    scoring after the response); None when nothing records, so that work makes no span."""
    if _tracer is None:
        return None
    trace = _otel_trace()
    current = trace.get_current_span()
    if not current.is_recording():
        return None
    return trace.set_span_in_context(current)


def record_span(
    name: str,
    parent: Any,
    start_ns: int,
    end_ns: int,
    error: BaseException | None = None,
    **attributes: Any,
) -> None:
    """A finished child span of `parent` (from `parent_context`) over [start_ns, end_ns]:
    one batched call scores copies of several requests, and each request's trace gets its
    own span of it. Nothing when tracing is off or `parent` is None."""
    t = _tracer
    if t is None or parent is None:
        return
    attrs = {k: v for k, v in attributes.items() if v is not None}
    s = t.start_span(name, context=parent, attributes=attrs, start_time=start_ns)
    if error is not None:
        s.record_exception(error)
        s.set_status(_otel_trace().Status(_otel_trace().StatusCode.ERROR, str(error)))
    s.end(end_time=end_ns)


_trace_mod: Any = None


def _otel_trace() -> Any:
    global _trace_mod
    if _trace_mod is None:
        from opentelemetry import trace

        _trace_mod = trace
    return _trace_mod


class Phases:
    """A job's span with one child span per phase: `step(name)` ends the phase running and
    starts the next (training's data, features, folds, tuning, export, backtest, register).
    Nothing at all when tracing is off."""

    def __init__(self, name: str, **attributes: Any) -> None:
        self._cm: Any = None
        self._phase: Span | None = None
        self._job: Span | None = None
        if _tracer is not None:
            self._cm = span(name, **attributes)
            self._job = self._cm.__enter__()

    def step(self, name: str) -> None:
        if self._job is None or _tracer is None:
            return
        if self._phase is not None:
            self._phase.end()
        self._phase = _tracer.start_span(name)  # a child of the job: it is current

    def close(self, error: BaseException | None = None) -> None:
        if self._phase is not None:
            self._phase.end()
            self._phase = None
        if self._cm is not None:
            if error is not None and self._job is not None:
                self._job.record_exception(error)
            self._cm.__exit__(None, None, None)
            self._cm = self._job = None
