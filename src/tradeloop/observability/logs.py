"""Structured logs: one JSON object per line (python-json-logger), readable text on a TTY (rich).

Every line carries `time`, `level`, `logger` and `message`, plus whichever of `pipeline`,
`version`, `variant`, `request_id`, `trace_id` and `span_id` apply: the first four from
`log_context` (a contextvar, so concurrent requests and threads never mix them up) or from
`extra=`, the trace ids from the current OpenTelemetry span once `tracing` is set up. The
choice of format is `TRADELOOP_LOG_FORMAT` (json, text, auto: text on a TTY, else JSON) and the
level `TRADELOOP_LOG_LEVEL` (default INFO).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any, Literal

from pythonjsonlogger.json import JsonFormatter

from tradeloop.errors import BadInput

__all__ = [
    "CONTEXT_FIELDS",
    "configure_logging",
    "current_context",
    "log_context",
    "set_span_source",
]

CONTEXT_FIELDS = ("pipeline", "version", "variant", "request_id")
LogFormat = Literal["json", "text", "auto"]

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "tradeloop_log_context", default=None
)
# Returns (trace_id, span_id) of the current span, or None; set by observability.tracing so
# this module needs no OpenTelemetry import (and costs nothing when tracing is off).
_span_source: Callable[[], tuple[str, str] | None] | None = None
_HANDLER_NAME = "tradeloop"
# Libraries that log every HTTP request or migration step at INFO: warnings only.
_QUIET = ("httpx", "httpcore", "alembic", "urllib3", "uvicorn.access")


def set_span_source(source: Callable[[], tuple[str, str] | None] | None) -> None:
    global _span_source
    _span_source = source


def current_context() -> dict[str, str]:
    return dict(_context.get() or {})


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add fields (pipeline=..., version=...) to every log line inside the block."""
    merged = {
        **(_context.get() or {}),
        **{k: str(v) for k, v in fields.items() if v not in (None, "")},
    }
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Puts the context fields and the span ids on the record (an `extra=` value wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for k, v in (_context.get() or {}).items():
            if not hasattr(record, k):
                setattr(record, k, v)
        if _span_source is not None and not hasattr(record, "trace_id"):
            ids = _span_source()
            if ids is not None:
                record.trace_id, record.span_id = ids
        return True


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        json_ensure_ascii=False,
    )


def _text_handler(stream: IO[str]) -> logging.Handler:
    from rich.console import Console
    from rich.logging import RichHandler

    return RichHandler(console=Console(file=stream), show_path=False, rich_tracebacks=False)


def configure_logging(
    fmt: LogFormat | None = None,
    level: str | int | None = None,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Install tradeloop's handler on the root logger (idempotent: it replaces its own)."""
    stream = stream or sys.stderr
    chosen = fmt or os.environ.get("TRADELOOP_LOG_FORMAT", "auto")
    if chosen not in ("json", "text", "auto"):
        raise BadInput(f"TRADELOOP_LOG_FORMAT must be json, text or auto, got {chosen!r}")
    if chosen == "auto":
        chosen = "text" if stream.isatty() else "json"
    lvl: Any = level or os.environ.get("TRADELOOP_LOG_LEVEL", "INFO")
    if isinstance(lvl, str) and not isinstance(logging.getLevelName(lvl.upper()), int):
        raise BadInput(f"TRADELOOP_LOG_LEVEL: unknown level {lvl!r}")
    handler: logging.Handler
    if chosen == "text":
        handler = _text_handler(stream)
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(json_formatter())
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(lvl.upper() if isinstance(lvl, str) else lvl)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
