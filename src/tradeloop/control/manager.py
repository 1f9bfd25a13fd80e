"""The manager: runs each reconciler when it is due, on one replica at a time, and records
every run.

When a controller runs next (kept in memory: the manager's scheduling, not reconcile state, so
losing it is safe and a restarted manager simply runs everything once):

    success          after `result.requeue_after`, or the controller's `interval`
    exception        after 1 s, 2 s, 4 s, ... (`base_backoff` doubling, capped at
                     `max_backoff`); the count resets on the next success
    TerminalError    parked: after max(`terminal_backoff`, interval), or as soon as `watch()`
                     returns something else (the tracked branch moved: a fix in git)
    lease elsewhere  after lease_ttl / 3, to see whether the leader has gone

Leadership is per controller: the lease `controller:<name>` is taken before a run, renewed by
a heartbeat during it, after it, and every ttl/3 between runs. So the leader keeps it, and a
follower takes over only once the leader stops renewing (it stopped, released on shutdown, or
died: a holder that is a dead process on this host is taken over at once). Expiry is judged on
the store's clock, so on a SimulatedClock it is simulated time.

Controllers run one after another in the calling thread. While one runs long (training), the
others' leases are not renewed and may pass to another replica; that is intended, since this
process is not serving them meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError

from tradeloop.clock import Clock
from tradeloop.control.metrics import ControllerMetrics
from tradeloop.control.reconciler import Context, Reconciler, Result, TerminalError
from tradeloop.errors import BadInput
from tradeloop.observability import tracing
from tradeloop.store import Store, leases
from tradeloop.store.tables import controller_runs

Outcome = Literal["ok", "error", "terminal"]

log = logging.getLogger("tradeloop.control.manager")

_MESSAGE_LIMIT = 2000


@dataclass(frozen=True)
class RunRecord:
    """One run, as written to `controller_runs`, plus when the manager will look again."""

    controller: str
    holder: str
    started_at: datetime
    duration_s: float
    outcome: Outcome
    message: str
    next_run_at: datetime


@dataclass
class _Slot:
    reconciler: Reconciler
    next_run_at: datetime | None = None  # None: at the first opportunity
    failures: int = 0
    leader: bool = False
    renew_at: datetime | None = None
    parked: object = None  # the watched value when it parked; None while not parked


def lease_name(controller: str) -> str:
    return f"controller:{controller}"


class Manager:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        controllers: Sequence[Reconciler],
        holder: str | None = None,
        lease_ttl: timedelta = timedelta(seconds=30),
        metrics: ControllerMetrics | None = None,
        *,
        extras: dict[str, Any] | None = None,
        base_backoff: timedelta = timedelta(seconds=1),
        max_backoff: timedelta = timedelta(minutes=5),
        terminal_backoff: timedelta = timedelta(hours=1),
        watch: Callable[[], object] | None = None,
    ) -> None:
        names = [c.name for c in controllers]
        for c in controllers:
            if not c.name or len(c.name) > 64:
                raise BadInput(f"a controller name must be 1 to 64 characters, got {c.name!r}")
            if names.count(c.name) > 1:
                raise BadInput(f"two controllers are named {c.name!r}")
            if c.interval <= timedelta(0):
                raise BadInput(f"controller {c.name!r}: interval must be positive")
        if lease_ttl <= timedelta(0) or base_backoff <= timedelta(0):
            raise BadInput("lease_ttl and base_backoff must be positive")
        self.store = store
        self.clock = clock
        # A fresh tag per manager: two managers in one process must not share a holder id.
        self.holder = holder or leases.process_holder(f"manager-{uuid.uuid4().hex[:8]}")
        self.lease_ttl = lease_ttl
        self.metrics = metrics if metrics is not None else ControllerMetrics()
        self.extras: dict[str, Any] = dict(extras or {})
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.terminal_backoff = terminal_backoff
        self.watch = watch
        self._slots = {c.name: _Slot(c) for c in controllers}
        self._lock = threading.Lock()
        self.metrics.declare(names)

    @property
    def controllers(self) -> list[Reconciler]:
        return [s.reconciler for s in self._slots.values()]

    @property
    def _retry(self) -> timedelta:
        return self.lease_ttl / 3

    def run_once(self) -> list[RunRecord]:
        """Run every controller that is due now and whose lease we hold or can take."""
        records = []
        with self._lock:
            self._unpark()
            for slot in self._slots.values():
                now = self.clock.now()
                if slot.next_run_at is None or slot.next_run_at <= now:
                    if self._lead(slot, now):
                        records.append(self._run(slot))
                    else:
                        self.metrics.skips.labels(slot.reconciler.name).inc()
                        slot.next_run_at = now + self._retry
                elif slot.leader and slot.renew_at is not None and slot.renew_at <= now:
                    self._lead(slot, now)
        return records

    def _unpark(self) -> None:
        """Parked controllers run at once when the watched value changed (a fix in git)."""
        parked = [s for s in self._slots.values() if s.parked is not None]
        if not parked or self.watch is None:
            return
        try:
            now_value = self._watched()
        except Exception as exc:  # the watch is advisory: the backoff still un-parks
            log.warning("watch for parked controllers failed: %s", exc)
            return
        for slot in parked:
            if now_value != slot.parked:
                log.info("%s: the desired state changed, un-parking", slot.reconciler.name)
                slot.next_run_at = None

    def _watched(self) -> object:
        value = self.watch() if self.watch is not None else None
        return "" if value is None else value  # None means "not parked"

    def next_due(self) -> datetime:
        """The earliest time this manager has work: a run, a retry, or a lease renewal."""
        now = self.clock.now()
        times = [s.next_run_at or now for s in self._slots.values()]
        times += [s.renew_at for s in self._slots.values() if s.leader and s.renew_at is not None]
        return min(times, default=now + self._retry)

    def run_forever(self, stop: threading.Event, idle: float = 0.5) -> None:
        """Run until `stop` is set, then release the leases so a standby takes over at once.

        Sleeps on the clock until the next due time, but at most `idle` seconds per loop so a
        stop is noticed promptly on a wall clock. On a SimulatedClock each loop therefore moves
        simulated time on by at most `idle`; to run months quickly, advance the clock yourself
        and call `run_once`.
        """
        try:
            while not stop.is_set():
                self.run_once()
                wait = (self.next_due() - self.clock.now()).total_seconds()
                if wait <= 0:
                    stop.wait(0.01)  # something asked to run again at once; don't spin
                elif not stop.is_set():
                    self.clock.sleep(min(wait, idle))
        finally:
            self.release_all()

    def release_all(self) -> None:
        """Give up every lease this manager holds (on shutdown), so a standby needn't wait."""
        with self._lock:
            for name, slot in self._slots.items():
                try:
                    leases.release(self.store, lease_name(name), self.holder)
                except SQLAlchemyError as exc:
                    log.warning("could not release the lease of %s: %s", name, exc)
                slot.leader = False
                slot.renew_at = None
                self.metrics.leader.labels(name).set(0)

    def _lead(self, slot: _Slot, now: datetime) -> bool:
        """Take or renew the controller's lease; a database error counts as not leading."""
        name = slot.reconciler.name
        try:
            held = leases.acquire(self.store, lease_name(name), self.holder, self.lease_ttl)
        except SQLAlchemyError as exc:
            log.warning("lease check for %s failed: %s", name, exc)
            held = False
        if slot.leader and not held:
            log.warning("%s lost the lease of %s", self.holder, name)
        slot.leader = held
        slot.renew_at = now + self._retry if held else None
        self.metrics.leader.labels(name).set(1 if held else 0)
        return held

    def _parked_on(self) -> object:
        try:
            return self._watched()
        except Exception as exc:
            log.warning("watch for parked controllers failed: %s", exc)
            return ""

    def _backoff(self, failures: int) -> timedelta:
        seconds = self.base_backoff.total_seconds() * 2.0 ** min(failures - 1, 60)
        return min(timedelta(seconds=min(seconds, 1e9)), self.max_backoff)

    def _run(self, slot: _Slot) -> RunRecord:
        r = slot.reconciler
        ctx = Context(
            r.name,
            self.clock,
            self.store,
            logging.getLogger(f"tradeloop.control.{r.name}"),
            dict(self.extras),
        )
        started_at = self.clock.now()
        t0 = time.perf_counter()
        outcome: Outcome
        try:
            with (
                leases.Heartbeat(self.store, lease_name(r.name), self.holder, self.lease_ttl),
                tracing.span(f"reconcile {r.name}", **{"tradeloop.controller": r.name}),
            ):
                result = r.reconcile(ctx)
            if not isinstance(result, Result):
                raise TypeError(f"reconcile returned {type(result).__name__}, not a Result")
        except TerminalError as exc:
            outcome, slot.failures = "terminal", 0
            delay = max(self.terminal_backoff, r.interval)
            message = f"parked ({exc.reason}): {exc} (until git changes, at most {delay})"
            log.error("%s: parked (%s) for at most %s: %s", r.name, exc.reason, delay, exc)
            slot.parked = self._parked_on()
            self.metrics.set_parked(r.name, exc.reason)
            self.metrics.errors.labels(r.name, type(exc).__name__).inc()
        except Exception as exc:
            outcome, slot.failures = "error", slot.failures + 1
            delay = self._backoff(slot.failures)
            message = f"{type(exc).__name__}: {exc} (retry {slot.failures} in {delay})"
            log.warning("%s failed (retry in %s)", r.name, delay, exc_info=True)
            self.metrics.errors.labels(r.name, type(exc).__name__).inc()
        else:
            outcome, slot.failures = "ok", 0
            delay = r.interval if result.requeue_after is None else result.requeue_after
            message = result.message
        if outcome != "terminal" and slot.parked is not None:
            slot.parked = None
            self.metrics.set_parked(r.name, None)
        duration = time.perf_counter() - t0
        ended = self.clock.now()
        slot.next_run_at = ended + delay
        if not self._lead(slot, ended):  # also restarts the ttl after a long run
            message += " (the lease was lost during the run)"
        message = message[:_MESSAGE_LIMIT]
        self._record(r.name, started_at, duration, outcome, message)
        self.metrics.runs.labels(r.name, outcome).inc()
        self.metrics.duration.labels(r.name).observe(duration)
        if outcome == "ok":
            self.metrics.last_success.labels(r.name).set(ended.timestamp())
        return RunRecord(
            r.name, self.holder, started_at, duration, outcome, message, slot.next_run_at
        )

    def _record(
        self, name: str, started_at: datetime, duration: float, outcome: Outcome, message: str
    ) -> None:
        try:
            with self.store.begin() as c:
                c.execute(
                    controller_runs.insert().values(
                        controller=name,
                        started_at=started_at,
                        duration_s=duration,
                        outcome=outcome,
                        message=message,
                    )
                )
        except SQLAlchemyError as exc:  # the run happened; losing its record must not stop us
            log.error("could not record the run of %s: %s", name, exc)
