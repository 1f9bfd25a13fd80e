"""The rollout of a challenger as a pure state machine: (state, spec, observation) → next state.

Phases, for a challenger C against a champion H:

    approval ─► shadow ─► step 0 … step n-1 ─► promoting ─► promoted
        │          │            │                  (git, alias, traffic)
        └──────────┴────────────┴─► rolling_back ─► rolled_back
                                 └─► paused (inconclusive, budget spent: a human decides)

blue_green: approval ─► shadow (pre-promotion analysis) ─► switched (C live, H shadow;
post-promotion analysis) ─► promoting | rolling_back. `direct`: approval ─► promoting.

The rules that keep the known traps out: no data is never a reason to promote or to roll back
(a phase is judged only after its pause *and* the minimum sample); `inconclusive` extends the
phase up to `max_extensions`, then parks it (`paused`), never promotes; the final promotion needs
evidence the challenger is better (`promote` verdict), intermediate canary steps advance unless
there is evidence of harm; an SLO breach counts as a failure, and more than `failure_limit`
failures roll back. Decisions are recorded as `promoting`/`rolling_back` *before* their effects,
so a controller killed half-way finishes the same decision on restart.

These rules are shared; what differs between canary, blue-green and direct (the live phases,
their pauses and traffic) is the strategy's, looked up in `control.rollout_strategies`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from tradeloop.control.rollout_state import (
    SETTLED,
    TERMINAL,
    Observation,
    Phase,
    RolloutState,
    Traffic,
)
from tradeloop.control.rollout_strategies import (
    RolloutStrategy,
    default_pause,
    rollout_strategy,
    strategy_for_phase,
)
from tradeloop.errors import RuntimeFailure
from tradeloop.spec import DeploymentSpec

__all__ = [
    "TERMINAL",
    "Observation",
    "Phase",
    "RolloutState",
    "Traffic",
    "advance",
    "intended_split",
    "intended_weights",
    "start",
    "traffic",
]


def _strategy(spec: DeploymentSpec, strategy: RolloutStrategy | None) -> RolloutStrategy:
    """The strategy to go live with: `strategy` if given (a plug-in under test), else the spec's."""
    return strategy if strategy is not None else rollout_strategy(spec.strategy)


def _owner(s: RolloutState, strategy: RolloutStrategy) -> RolloutStrategy | None:
    """The strategy that runs the phase `s` is in; None for the shared phases."""
    return strategy if strategy.live_phase == s.phase else strategy_for_phase(s.phase)


def start(
    version: str,
    now: datetime,
    spec: DeploymentSpec,
    has_champion: bool,
    strategy: RolloutStrategy | None = None,
) -> RolloutState:
    if spec.approval == "manual":
        return RolloutState(
            version, "approval", 0, now, first=not has_champion, reason="waiting for approval"
        )
    return _after_approval(
        RolloutState(version, "approval", 0, now, first=not has_champion),
        now,
        spec,
        "approved by policy (auto)",
        _strategy(spec, strategy),
    )


def _after_approval(
    s: RolloutState, now: datetime, spec: DeploymentSpec, reason: str, strategy: RolloutStrategy
) -> RolloutState:
    if s.first:
        return replace(
            s,
            phase="promoting",
            phase_started_at=now,
            reason=reason + "; first model, nothing to compare",
        )
    if strategy.uses_shadow and spec.shadow is not None:
        return replace(s, phase="shadow", phase_started_at=now, reason=reason)
    return strategy.enter(s, now, spec, reason)


def _phase_length(
    s: RolloutState, spec: DeploymentSpec, strategy: RolloutStrategy
) -> tuple[float, int]:
    """(seconds to wait, samples to wait for) before the phase is judged."""
    if s.phase == "shadow" and spec.shadow is not None:
        return spec.shadow.duration.total_seconds(), max(
            spec.shadow.min_samples, spec.analysis.min_samples
        )
    owner = _owner(s, strategy)
    pause = owner.pause(s, spec) if owner is not None else default_pause(spec)
    return pause.total_seconds(), spec.analysis.min_samples


def advance(
    s: RolloutState,
    spec: DeploymentSpec,
    obs: Observation,
    strategy: RolloutStrategy | None = None,
) -> RolloutState:
    """The next state; the same state when nothing is due (level-based, idempotent)."""
    if s.phase in SETTLED:
        return s
    chosen = _strategy(spec, strategy)
    if s.phase == "approval":
        if obs.approval == "rejected":
            return replace(
                s, phase="rolling_back", phase_started_at=obs.now, reason="rejected by a reviewer"
            )
        if obs.approval == "approved":
            return _after_approval(s, obs.now, spec, "approved by a reviewer", chosen)
        return s
    if not obs.slo_ok:
        failures = s.failures + 1
        if failures > spec.analysis.failure_limit:
            return replace(
                s,
                phase="rolling_back",
                failures=failures,
                phase_started_at=obs.now,
                reason=f"SLO breached: {obs.slo_reason}",
            )
        return replace(s, failures=failures, reason=f"SLO breach {failures}: {obs.slo_reason}")
    if obs.decision == "rollback":
        return replace(
            s,
            phase="rolling_back",
            phase_started_at=obs.now,
            reason=f"analysis: {obs.decision_reason}",
        )
    wait, need = _phase_length(s, spec, chosen)
    elapsed = (obs.now - s.phase_started_at).total_seconds()
    if elapsed < wait or obs.samples < need or obs.decision is None:
        return s  # not judged yet: no data is no reason
    owner = _owner(s, chosen)
    final = owner is not None and owner.is_final(s, spec)
    if obs.decision == "promote" or (obs.decision == "continue" and not final):
        why = f"analysis: {obs.decision_reason}"
        if final:
            return replace(s, phase="promoting", phase_started_at=obs.now, reason=why)
        if owner is None:  # shadow passed: go live the spec's way
            return chosen.enter(s, obs.now, spec, why)
        return owner.next(s, obs.now, spec, why)
    # final phase with no evidence of improvement, or inconclusive anywhere
    if s.extensions < spec.analysis.max_extensions and spec.analysis.on_inconclusive == "extend":
        return replace(
            s,
            phase_started_at=obs.now,
            extensions=s.extensions + 1,
            reason=f"extended ({s.extensions + 1}/{spec.analysis.max_extensions}): "
            f"{obs.decision_reason}",
        )
    return replace(
        s,
        phase="paused",
        phase_started_at=obs.now,
        reason=f"paused, needs a human: {obs.decision_reason}",
    )


def traffic(
    s: RolloutState,
    spec: DeploymentSpec,
    champion: str | None,
    strategy: RolloutStrategy | None = None,
) -> Traffic:
    """The serving state a phase wants. `champion` is the version serving as champion now."""
    c = s.version
    if s.phase in ("promoted", "promoting"):
        return Traffic((("champion", c, "live", 100),))
    if champion is None:
        return Traffic(())  # nothing approved serves yet: an unapproved model gets no traffic
    if s.phase in ("approval", "rolled_back", "rolling_back"):
        return Traffic((("champion", champion, "live", 100),))
    if s.phase in ("shadow", "paused"):
        return Traffic((("champion", champion, "live", 100), ("challenger", c, "shadow", 0)))
    owner = _owner(s, _strategy(spec, strategy))
    if owner is None:
        raise RuntimeFailure(f"no rollout strategy runs phase {s.phase!r}")
    return owner.traffic(s, spec, champion)


def intended_split(
    s: RolloutState, spec: DeploymentSpec, strategy: RolloutStrategy | None = None
) -> tuple[float, float] | None:
    """(champion, challenger) share of requests when this phase splits traffic by weight."""
    owner = _owner(s, _strategy(spec, strategy))
    return owner.split(s, spec) if owner is not None else None


def intended_weights(
    s: RolloutState, spec: DeploymentSpec, strategy: RolloutStrategy | None = None
) -> tuple[float, float]:
    """(champion, challenger) share of scored requests in this phase, for the SRM check."""
    return intended_split(s, spec, strategy) or (50.0, 50.0)  # shadow, switched: both score all
