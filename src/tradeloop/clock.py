"""Clocks: everything time-dependent takes one, so tests can run months of market in seconds."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait; a simulated clock advances instead of blocking."""
        ...


class WallClock:
    """The real time. Production uses this one."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class SimulatedClock:
    """A clock that moves only when told to (or when something sleeps on it).

    Thread-safe, so a gateway thread and a controller thread can share one.
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2024, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("SimulatedClock start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(timedelta(seconds=max(0.0, seconds)))

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("a clock never goes backwards")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> datetime:
        when = when.astimezone(UTC)
        with self._lock:
            if when < self._now:
                raise ValueError(f"a clock never goes backwards: {when} < {self._now}")
            self._now = when
            return self._now


def utc(dt: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


class OffsetClock:
    """Starts at `start` and moves with the wall clock: a training job launched by a trainer
    whose clock reads `start` (simulated or real) keeps that time line."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("OffsetClock start must be timezone-aware")
        self._offset = start.astimezone(UTC) - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
