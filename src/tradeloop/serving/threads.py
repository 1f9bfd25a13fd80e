"""Background threads that yield the CPU to the request path.

The gateway's helpers (prediction-log writer, shadow scorer, deployment poller) do their work
in bursts: a Parquet flush is ~10 ms of CPU once a second. On a small machine, a burst that
wins a core from the event loop for one scheduler slice was the gateway's p99. A raised nice
value on the helper's own thread (Linux schedules threads individually) lets the kernel run the
event loop first and the helper in the gaps. Elsewhere this does nothing: on other systems
`setpriority` with a thread id would name a process.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

BACKGROUND_NICE = 10


def lower_priority(nice: int = BACKGROUND_NICE) -> bool:
    """Raise the calling thread's nice value by `nice`; True if the system took it."""
    if sys.platform != "linux":
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except OSError as exc:  # a container may forbid it; the thread still works
        log.debug("could not lower the priority of %s: %s", threading.current_thread().name, exc)
        return False
    return True


def background(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread that lowers its own priority, then runs `target`."""

    def run() -> None:
        lower_priority()
        target()

    return threading.Thread(target=run, name=name, daemon=True)
