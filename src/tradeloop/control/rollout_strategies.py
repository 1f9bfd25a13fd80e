"""How a challenger goes live, one class per `deployment.strategy`, and their registry.

A strategy decides only what is its own: the phase it runs between shadow and promotion (its
`live_phase`), how long each of those phases lasts, which one is final, and the traffic they
want. The rules every strategy shares — approval, the shadow phase, SLO failures, rollback on
harm, extensions, pausing, no judgement without data — stay in `control.rollout`, so a new
strategy cannot get them wrong. A live phase is run by the strategy that owns its name (see
`strategy_for_phase`): a state read back after a restart plans the same way whatever the
spec says now. A new strategy registers with `register_rollout_strategy` and passes
`control.rollout_conformance.check_rollout_strategy`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from tradeloop.control.rollout_state import RolloutState, Traffic
from tradeloop.errors import BadInput
from tradeloop.spec import DeploymentSpec


class RolloutStrategy(Protocol):
    name: str
    live_phase: str | None  # None: straight from approval to promotion
    uses_shadow: bool  # run the spec's shadow phase (if any) before going live
    event: str  # the controller's event name when a rollout enters or moves in live_phase

    def enter(self, s: RolloutState, now: datetime, spec: DeploymentSpec, why: str) -> RolloutState:
        """The first live state (or `promoting`) once approval and shadow are behind."""
        ...

    def next(self, s: RolloutState, now: datetime, spec: DeploymentSpec, why: str) -> RolloutState:
        """The state after a live phase that is not final passed its analysis."""
        ...

    def is_final(self, s: RolloutState, spec: DeploymentSpec) -> bool:
        """Passing this live phase promotes; that takes a `promote` verdict, not `continue`."""
        ...

    def pause(self, s: RolloutState, spec: DeploymentSpec) -> timedelta:
        """How long this live phase runs before it is judged."""
        ...

    def traffic(self, s: RolloutState, spec: DeploymentSpec, champion: str) -> Traffic:
        """What serves in this live phase, `champion` being the version serving as champion."""
        ...

    def split(self, s: RolloutState, spec: DeploymentSpec) -> tuple[float, float] | None:
        """(champion, challenger) share of requests when traffic is split between them by
        weight (the analysis checks the split); None when both arms score every request."""
        ...


def default_pause(spec: DeploymentSpec) -> timedelta:
    """A live phase's length when nothing more specific applies: the last step's pause."""
    if spec.steps:
        return spec.steps[-1].pause
    return spec.shadow.duration if spec.shadow else timedelta(0)


class Direct:
    """Promote once approved: no shadow, no analysis."""

    name = "direct"
    live_phase: str | None = None
    uses_shadow = False
    event = "promoting"

    def enter(self, s: RolloutState, now: datetime, spec: DeploymentSpec, why: str) -> RolloutState:
        return replace(s, phase="promoting", phase_started_at=now, reason=why)

    def next(self, s: RolloutState, now: datetime, spec: DeploymentSpec, why: str) -> RolloutState:
        return self.enter(s, now, spec, why)

    def is_final(self, s: RolloutState, spec: DeploymentSpec) -> bool:
        return True

    def pause(self, s: RolloutState, spec: DeploymentSpec) -> timedelta:
        return timedelta(0)

    def traffic(self, s: RolloutState, spec: DeploymentSpec, champion: str) -> Traffic:
        return Traffic((("champion", champion, "live", 100),))

    def split(self, s: RolloutState, spec: DeploymentSpec) -> tuple[float, float] | None:
        return None


class Canary:
    """Live steps of growing weight (`deployment.steps`), each judged after its pause."""

    name = "canary"
    live_phase: str | None = "step"
    uses_shadow = True
    event = "canary"

    def enter(self, s: RolloutState, now: datetime, spec: DeploymentSpec, why: str) -> RolloutState:
        if not spec.steps:
            return replace(s, phase="promoting", phase_started_at=now, reason=why)
        return replace(s, phase="step", step=0, phase_started_at=now, extensions=0, reason=why)

    def next(self, s: RolloutState, now: datetime, spec: DeploymentSpec, why: str) -> RolloutState:
        return replace(s, step=s.step + 1, phase_started_at=now, extensions=0, reason=why)

    def is_final(self, s: RolloutState, spec: DeploymentSpec) -> bool:
        return s.step == len(spec.steps) - 1

    def pause(self, s: RolloutState, spec: DeploymentSpec) -> timedelta:
        return spec.steps[s.step].pause

    def traffic(self, s: RolloutState, spec: DeploymentSpec, champion: str) -> Traffic:
        w = spec.steps[s.step].weight
        return Traffic(
            (("champion", champion, "live", 100 - w), ("challenger", s.version, "live", w))
        )

    def split(self, s: RolloutState, spec: DeploymentSpec) -> tuple[float, float] | None:
        if not spec.steps:
            return (50.0, 50.0)
        w = spec.steps[s.step].weight
        return (100.0 - w, float(w)) if 0 < w < 100 else (50.0, 50.0)


class BlueGreen:
    """Switch all traffic to the challenger, keep the champion scoring in shadow, then judge."""

    name = "blue_green"
    live_phase: str | None = "switched"
    uses_shadow = True
    event = "switch"

    def enter(self, s: RolloutState, now: datetime, spec: DeploymentSpec, why: str) -> RolloutState:
        return replace(s, phase="switched", step=0, phase_started_at=now, extensions=0, reason=why)

    def next(self, s: RolloutState, now: datetime, spec: DeploymentSpec, why: str) -> RolloutState:
        return replace(s, phase="promoting", phase_started_at=now, reason=why)

    def pause(self, s: RolloutState, spec: DeploymentSpec) -> timedelta:
        return default_pause(spec)

    def is_final(self, s: RolloutState, spec: DeploymentSpec) -> bool:
        return True

    def traffic(self, s: RolloutState, spec: DeploymentSpec, champion: str) -> Traffic:
        return Traffic(
            (("champion", champion, "shadow", 0), ("challenger", s.version, "live", 100))
        )

    def split(self, s: RolloutState, spec: DeploymentSpec) -> tuple[float, float] | None:
        return None  # both arms score every request, one of them in shadow


# ---------------------------------------------------------------------------------- registry

_STRATEGIES: dict[str, RolloutStrategy] = {}


def register_rollout_strategy(name: str, strategy: RolloutStrategy) -> RolloutStrategy:
    """Make `deployment.strategy: name` use `strategy`. Re-registering a name replaces it."""
    if getattr(strategy, "name", None) != name:
        raise BadInput(
            f"rollout strategy {strategy!r} is named {getattr(strategy, 'name', None)!r}, not {name!r}"
        )
    taken = {s.live_phase: n for n, s in _STRATEGIES.items() if n != name and s.live_phase}
    if strategy.live_phase in taken:
        raise BadInput(
            f"phase {strategy.live_phase!r} already belongs to strategy {taken[strategy.live_phase]!r}"
        )
    _STRATEGIES[name] = strategy
    return strategy


def rollout_strategy(name: str) -> RolloutStrategy:
    try:
        return _STRATEGIES[name]
    except KeyError:
        raise BadInput(f"unknown rollout strategy {name!r}; known: {sorted(_STRATEGIES)}") from None


def registered_rollout_strategies() -> dict[str, RolloutStrategy]:
    return dict(sorted(_STRATEGIES.items()))


def strategy_for_phase(phase: str) -> RolloutStrategy | None:
    """The strategy whose live phase this is; None for the shared phases (shadow, ...)."""
    for s in _STRATEGIES.values():
        if s.live_phase == phase:
            return s
    return None


for _s in (Canary(), BlueGreen(), Direct()):
    register_rollout_strategy(_s.name, _s)
