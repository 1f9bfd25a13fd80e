"""JSON log lines (python-json-logger) with context fields; text on request; bad settings."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from tradeloop.errors import BadInput
from tradeloop.observability.logs import configure_logging, log_context


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_one_json_object_per_line_with_context(restore_root: None) -> None:
    buf = io.StringIO()
    configure_logging("json", "INFO", stream=buf)
    log = logging.getLogger("tradeloop.test")
    with log_context(pipeline="demo", version="3"):
        log.info("scored %d rows", 2, extra={"variant": "champion"})
        with log_context(request_id="r-1"):
            log.warning("slow")
    log.info("outside")
    log.debug("not at INFO")
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert len(lines) == 3
    first, second, third = lines
    assert first["message"] == "scored 2 rows" and first["level"] == "INFO"
    assert first["logger"] == "tradeloop.test" and first["time"].endswith("+00:00")
    assert (first["pipeline"], first["version"], first["variant"]) == ("demo", "3", "champion")
    assert second["request_id"] == "r-1" and second["level"] == "WARNING"
    assert "pipeline" not in third and "request_id" not in third  # the context ended


def test_configuring_twice_keeps_one_handler(restore_root: None) -> None:
    buf = io.StringIO()
    configure_logging("json", stream=buf)
    configure_logging("json", stream=buf)
    logging.getLogger("tradeloop.x").info("once")
    assert len(buf.getvalue().splitlines()) == 1


def test_text_is_not_json(restore_root: None) -> None:
    buf = io.StringIO()
    configure_logging("text", stream=buf)
    logging.getLogger("tradeloop.x").warning("readable")
    out = buf.getvalue()
    assert "readable" in out and not out.lstrip().startswith("{")


def test_bad_settings_are_named(restore_root: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADELOOP_LOG_FORMAT", "xml")
    with pytest.raises(BadInput, match="TRADELOOP_LOG_FORMAT must be json, text or auto"):
        configure_logging()
    monkeypatch.delenv("TRADELOOP_LOG_FORMAT")
    with pytest.raises(BadInput, match="unknown level 'LOUD'"):
        configure_logging("json", "LOUD")
