"""Per-request telemetry of the gateway: the server span and the access-log line.

`begin` accepts a W3C `traceparent` (and `tracestate`) and opens the request's server span as
its child, current while the handler runs, so the model-run span, the prediction-log row and
every log line of the request carry the same trace id; `finish` closes it, answers with the
span's own `traceparent`, and writes the access-log line. With tracing and the access log both
off, `begin` returns None after one check and `finish` does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradeloop.observability import tracing
from tradeloop.serving.access_log import AccessLog
from tradeloop.serving.context import Ctx
from tradeloop.spec import ServingSpec

__all__ = ["Open", "RequestTelemetry"]

_MODULES: tuple[Any, Any] | None = None


def _otel() -> tuple[Any, Any]:
    """opentelemetry's context and trace modules, imported once tracing is on."""
    global _MODULES
    if _MODULES is None:
        from opentelemetry import context, trace

        _MODULES = (context, trace)
    return _MODULES


@dataclass
class Open:
    span: Any = None
    token: Any = None


class RequestTelemetry:
    def __init__(self, model_name: str, serving: ServingSpec) -> None:
        self.model_name = model_name
        self.access = AccessLog(serving)

    def begin(self, route: str, method: str, ctx: Ctx) -> Open | None:
        t = tracing.tracer()
        if t is None:
            return Open() if self.access.enabled else None
        traceparent = ctx.header("traceparent")
        if not tracing.head_sampled(traceparent):  # unsampled: cost one random number
            return Open() if self.access.enabled else None
        otel_context, trace = _otel()
        carrier = {k: v for k in ("traceparent", "tracestate") if (v := ctx.header(k))}
        parent = tracing.extract(carrier)
        span = t.start_span(
            f"{method} {route}",
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "tradeloop.pipeline": self.model_name,
                "tradeloop.request_id": ctx.request_id,
            },
        )
        if not span.is_recording():  # not sampled: nothing to record, nothing to attach
            return Open() if self.access.enabled else None
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return Open(span, token)

    def finish(
        self, state: Open | None, route: str, ctx: Ctx, status: int, seconds: float
    ) -> list[tuple[bytes, bytes]]:
        """Close the request's telemetry; the response headers to add (its traceparent)."""
        if state is None:
            return []
        headers: list[tuple[bytes, bytes]] = []
        span = state.span
        if span is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_attribute("http.response.status_code", status)
            if ctx.variant:
                span.set_attribute("tradeloop.variant", ctx.variant)
                span.set_attribute("tradeloop.version", ctx.version)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            tp = tracing.inject({}).get("traceparent")
            if tp:
                headers.append((b"traceparent", tp.encode("latin-1")))
        try:
            self.access.record(
                route,
                status,
                seconds,
                pipeline=self.model_name,
                version=ctx.version,
                variant=ctx.variant,
                request_id=ctx.request_id,
            )
        finally:
            if span is not None:
                span.end()
                _otel()[0].detach(state.token)
        return headers
