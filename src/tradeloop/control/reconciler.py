"""The reconciler contract: observe, compare with the desired state, take one step, say when to
look again.

As small as controller-runtime's `reconcile` package. Reconciliation is level-based: `reconcile`
acts on what it reads *now* (the database, the registry, git) and keeps nothing in memory
between runs, so a restarted, duplicated or skipped run converges to the same state. When it
runs, how errors are retried and which replica may act is the manager's business
(`tradeloop.control.manager`), not the reconciler's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from tradeloop.clock import Clock
from tradeloop.control.events import record_event
from tradeloop.errors import TradeloopError
from tradeloop.store import Store

__all__ = ["PARK_REASONS", "Context", "Reconciler", "Result", "TerminalError"]


@dataclass(frozen=True)
class Result:
    """What a run did (`message`, shown by `tradeloop status`) and when to look again.

    `requeue_after=None` means the controller's own `interval`; a shorter delay asks for a
    prompt follow-up (a canary step that ends in five minutes), a longer one for quiet.
    """

    requeue_after: timedelta | None = None
    message: str = ""

    def __post_init__(self) -> None:
        if self.requeue_after is not None and self.requeue_after < timedelta(0):
            raise ValueError(f"requeue_after must not be negative, got {self.requeue_after}")


PARK_REASONS = ("invalid_spec", "bad_pin", "missing_version", "bad_reference", "other")


class TerminalError(TradeloopError):
    """Retrying will not help until the inputs change (a pinned version that does not exist,
    a spec the controller cannot act on).

    controller-runtime never requeues a terminal error and waits for a watch event instead. We
    poll rather than watch: the manager parks the controller until what it watches changes (the
    tracked branch's head: a fix in git) or `terminal_backoff` passes (1 h by default, never
    less than its interval), and records the run with outcome 'terminal'. Any other exception
    is retried with exponential backoff.

    `reason` is one of `PARK_REASONS`: a bounded label for the metric and the status.
    """

    def __init__(self, message: str, reason: str = "other") -> None:
        super().__init__(message)
        self.reason = reason if reason in PARK_REASONS else "other"


@dataclass
class Context:
    """Everything one run may use. Built afresh for every run, so nothing carries over.

    `extras` holds the collaborators the process wires in (project, registry, gateway handle);
    the manager passes each run its own shallow copy.
    """

    controller: str
    clock: Clock
    store: Store
    log: logging.Logger
    extras: dict[str, Any] = field(default_factory=dict)

    def emit(
        self, action: str, version: str | int | None = None, reason: str = "", **payload: Any
    ) -> None:
        """Add a step to the timeline (`events`), stamped with the clock's time and our name."""
        record_event(
            self.store,
            self.controller,
            action,
            ts=self.clock.now(),
            version=version,
            reason=reason,
            payload=payload,
        )


class Reconciler(Protocol):
    """A controller: `name` identifies it (and its lease), `interval` is how often it looks."""

    name: str
    interval: timedelta

    def reconcile(self, ctx: Context) -> Result: ...
