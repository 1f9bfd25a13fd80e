"""Errors the gateway keeps meeting, logged once and then counted.

During a database outage every request and every poll fails the same way; a traceback each
time wrote ~9,500 lines a minute and buried the first, useful one. `ErrorLog.report` logs the
first occurrence of an error (where, type, message) with its traceback, then only counts
repeats, and says how many there were at most once per `every` seconds and when it stops.
`tradeloop_gateway_errors_total{where}` counts every occurrence for dashboards.

Store errors get their own class: they mean "the database is unreachable", which the gateway
answers with 503 and a JSON reason, never 500.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from tradeloop.serving.http import ApiError

log = logging.getLogger("tradeloop.serving")

STORE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError,)


def is_store_error(exc: BaseException) -> bool:
    return isinstance(exc, STORE_ERRORS)


def store_unavailable(exc: BaseException, doing: str) -> ApiError:
    """The 503 a store failure becomes: what the gateway was doing and what the store said."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ApiError(
        503,
        f"the operational store is unreachable while {doing} ({type(exc).__name__}: "
        f"{first[:200]}); retry later",
        headers={"Retry-After": "1"},
    )


class ErrorLog:
    """Log-once-then-count for repeated identical errors; thread-safe."""

    def __init__(
        self,
        count: Callable[[str], None] | None = None,
        *,
        every: float = 60.0,
        now: Callable[[], float] = time.monotonic,
        max_keys: int = 1000,
    ) -> None:
        self._count = count
        self.every = every
        self._now = now
        self.max_keys = max_keys
        self._lock = threading.Lock()
        # key -> [repeats not yet reported, when last reported]
        self._seen: dict[tuple[str, str, str], list[float]] = {}

    def report(self, where: str, exc: BaseException, message: str = "") -> bool:
        """Log `exc` (with traceback) if it is new for `where`; count it otherwise.
        True when it was logged in full."""
        if self._count is not None:
            self._count(where)
        key = (where, type(exc).__name__, str(exc))
        now = self._now()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None:
                if len(self._seen) >= self.max_keys:
                    self._seen.clear()
                self._seen[key] = [0.0, now]
                first = True
            else:
                entry[0] += 1
                due = now - entry[1] >= self.every
                repeats = int(entry[0])
                if due:
                    entry[0], entry[1] = 0.0, now
                first = False
        if first:
            log.error("%s", message or f"error in {where}", exc_info=exc)
        elif due:
            log.error(
                "%s: the same %s repeated %d times in the last %.0f s (traceback logged once)",
                where,
                type(exc).__name__,
                repeats,
                self.every,
            )
        return first

    def resolved(self, where: str) -> None:
        """`where` works again: forget its errors (the next failure is logged in full)."""
        with self._lock:
            gone = [k for k in self._seen if k[0] == where]
            total = sum(int(self._seen[k][0]) for k in gone)
            for k in gone:
                del self._seen[k]
        if gone:
            log.warning("%s works again (%d repeated errors since the last report)", where, total)
