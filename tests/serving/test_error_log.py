"""Repeated identical errors: logged in full once, then counted and summarised."""

from __future__ import annotations

import logging

import pytest

from tradeloop.serving.error_log import ErrorLog


def test_the_same_error_is_logged_once_then_counted(caplog: pytest.LogCaptureFixture) -> None:
    t = [0.0]
    counted: list[str] = []
    errors = ErrorLog(counted.append, every=60.0, now=lambda: t[0])
    caplog.set_level(logging.ERROR, logger="tradeloop.serving")
    for _ in range(1000):
        errors.report("auth", ConnectionError("db down"))
    assert len(counted) == 1000
    assert [r.exc_info is not None for r in caplog.records] == [True]
    t[0] = 61.0
    errors.report("auth", ConnectionError("db down"))
    assert len(caplog.records) == 2 and "repeated 1000 times" in caplog.records[1].getMessage()
    # a different error, or the same one elsewhere, is news
    assert errors.report("auth", ConnectionError("db gone"))
    assert errors.report("deployment_poll", ConnectionError("db down"))
    # once it works again, the next failure is logged in full
    errors.resolved("auth")
    assert errors.report("auth", ConnectionError("db down"))


def test_the_remembered_errors_are_bounded() -> None:
    errors = ErrorLog(max_keys=10)
    for i in range(100):
        errors.report("route", ValueError(f"distinct {i}"))
    assert len(errors._seen) <= 10
