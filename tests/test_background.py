"""Worker: drains when woken, once more on stop, and survives a failing drain."""

from __future__ import annotations

import threading

import pytest

from tradeloop.background import Worker


def test_wake_drains_without_waiting_for_the_interval() -> None:
    drained = threading.Event()
    worker = Worker(drained.set, name="t-worker", interval=3600.0)
    worker.start()
    try:
        worker.wake()
        assert drained.wait(10)
    finally:
        worker.stop()
    assert not worker.running


def test_stop_drains_once_more_in_the_thread() -> None:
    threads: list[str] = []
    worker = Worker(
        lambda: threads.append(threading.current_thread().name), name="t-final", interval=3600.0
    )
    worker.start()
    worker.stop()
    assert threads and set(threads) == {"t-final"}


def test_a_failing_drain_is_logged_and_the_thread_lives_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = threading.Event(), threading.Event()

    def drain() -> None:
        if not first.is_set():
            first.set()
            raise OSError("disk full")
        second.set()

    worker = Worker(drain, name="t-fail", interval=3600.0)
    worker.start()
    try:
        worker.wake()
        assert first.wait(10)
        worker.wake()
        assert second.wait(10)
    finally:
        worker.stop()
    assert "t-fail: drain failed" in caplog.text
