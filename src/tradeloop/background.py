"""One background thread's lifecycle, shared by the gateway's queues (the prediction log, the
shadow scorer) and any other queue drained off the request path (the alert notifier may move
onto it): start, wake, stop, and a final drain so a graceful stop loses nothing.

The worker calls `drain()` every `interval` seconds, or as soon as `wake()` is called; it never
wakes per item, so a busy request path does not hand the GIL to the thread on each request.

    worker = Worker(queue.drain, name="tradeloop-predlog", interval=1.0)
    worker.start()
    ...
    worker.stop()  # drains once more in the thread before it ends
    queue.drain()  # and the caller drains anything queued after that

An exception from `drain` is the owner's to handle (count and log it inside `drain`): one
escaping would end the thread, so the worker logs it and keeps going.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

__all__ = ["Worker"]


class Worker:
    def __init__(self, drain: Callable[[], None], *, name: str, interval: float) -> None:
        self._drain = drain
        self.name = name
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start the thread (a no-op when it runs already)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Drain now rather than at the end of the interval."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to drain once more and end; wait up to `timeout` seconds for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self._safe_drain()
        self._safe_drain()

    def _safe_drain(self) -> None:
        try:
            self._drain()
        except Exception:  # the owner counts its own failures; the thread must live on
            log.exception("%s: drain failed", self.name)
