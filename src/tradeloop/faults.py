"""Fault injection for crash-consistency tests: `TRADELOOP_CRASH_AT=<point>` SIGKILLs the process
when it reaches that point. Unset (always, in production) it does nothing."""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    if os.environ.get("TRADELOOP_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
