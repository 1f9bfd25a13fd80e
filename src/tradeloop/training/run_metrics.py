"""Prometheus metrics of one training run, for `train` and `job run --metrics-port`.

A training takes minutes and holds its process, so a scrape while it runs is the way to see
where it is: the phase it is in, how long each phase took, folds and tuning trials done, and
when a run last succeeded. The pipeline's steps (`training.pipeline`) are folded into the
bounded phase set below ("fold 2/3" is `folds`, "final model" and "artifacts" are `export`),
so the `phase` label has at most nine values. Series carry `model`, the pipeline's name, as
the gateway's and the controllers' do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge

from tradeloop.clock import Clock, WallClock

__all__ = ["PHASES", "TrainingMetrics", "phase_of"]

# the phases in pipeline order, then the two ends
PHASES = ("data", "features", "tuning", "folds", "backtest", "export", "register")
ENDS = ("succeeded", "failed")
_STEP_PHASE = {"selection": "backtest", "final model": "export", "artifacts": "export"}


def phase_of(step: str) -> str:
    """The bounded phase of a pipeline step name. An unknown step is refused rather than
    guessed: a new pipeline step must be mapped here, or the phase label would grow."""
    if step.startswith("fold "):
        return "folds"
    phase = _STEP_PHASE.get(step, step)
    if phase not in PHASES:
        raise ValueError(f"training step {step!r} has no metrics phase; map it in PHASES")
    return phase


class TrainingMetrics:
    """Gauges for one pipeline's training in this process; `step` is the pipeline's `on_step`,
    `trial` its `on_trial`, `finish` records the outcome. `timer` (monotonic seconds) measures
    phase durations; `clock` stamps the last success."""

    def __init__(
        self,
        registry: CollectorRegistry,
        pipeline: str,
        *,
        clock: Clock | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = pipeline
        self._clock = clock or WallClock()
        self._timer = timer
        self._lock = threading.Lock()
        self._phase: str | None = None
        self._since = 0.0
        self._folds = 0
        self._seconds: dict[str, float] = {}
        r = registry
        self.phase = Gauge(
            "tradeloop_training_phase",
            "1 for the phase the training is in (succeeded/failed once it ended), else 0.",
            ("model", "phase"),
            registry=r,
        )
        self.phase_seconds = Gauge(
            "tradeloop_training_phase_duration_seconds",
            "Seconds the run spent in each phase it has finished.",
            ("model", "phase"),
            registry=r,
        )
        self.folds_done = Gauge(
            "tradeloop_training_folds_done", "Walk-forward folds fitted.", ("model",), registry=r
        )
        self.folds_total = Gauge(
            "tradeloop_training_folds", "Walk-forward folds of the run.", ("model",), registry=r
        )
        self.trials_done = Gauge(
            "tradeloop_training_trials_done",
            "Tuning trials this run finished (complete, pruned or failed).",
            ("model",),
            registry=r,
        )
        self.last_success = Gauge(
            "tradeloop_training_last_success_timestamp_seconds",
            "Unix time the last training of this process ended well (registered or gated).",
            ("model",),
            registry=r,
        )
        for p in (*PHASES, *ENDS):
            self.phase.labels(pipeline, p).set(0)
        for g in (self.folds_done, self.folds_total, self.trials_done):
            g.labels(pipeline).set(0)

    def step(self, name: str) -> None:
        """The pipeline entered step `name`."""
        phase = phase_of(name)
        with self._lock:
            if name.startswith("fold "):
                done, _, total = name.removeprefix("fold ").partition("/")
                self._folds = int(total)
                self.folds_done.labels(self.model).set(int(done) - 1)
                self.folds_total.labels(self.model).set(self._folds)
            self._enter(phase)

    def trial(self) -> None:
        with self._lock:
            self.trials_done.labels(self.model).inc()

    def finish(self, succeeded: bool) -> None:
        """The run ended: its last phase's duration, the outcome, and the success time."""
        with self._lock:
            self._enter("succeeded" if succeeded else "failed")
            if succeeded:
                self.last_success.labels(self.model).set(self._clock.now().timestamp())

    def _enter(self, phase: str) -> None:
        now = self._timer()
        if phase == self._phase:
            return
        if self._phase is not None:
            self.phase.labels(self.model, self._phase).set(0)
            if self._phase in PHASES:
                spent = self._seconds.get(self._phase, 0.0) + now - self._since
                self._seconds[self._phase] = spent
                self.phase_seconds.labels(self.model, self._phase).set(spent)
        if self._phase == "folds" and phase != "failed":  # left the folds: every one fitted
            self.folds_done.labels(self.model).set(self._folds)
        self.phase.labels(self.model, phase).set(1)
        self._phase, self._since = phase, now
