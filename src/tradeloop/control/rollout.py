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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Literal

from tradeloop.spec import DeploymentSpec

Phase = Literal[
    "approval",
    "shadow",
    "step",
    "switched",
    "promoting",
    "promoted",
    "rolling_back",
    "rolled_back",
    "paused",
]
TERMINAL: frozenset[str] = frozenset({"promoted", "rolled_back"})


@dataclass(frozen=True)
class RolloutState:
    version: str
    phase: Phase
    step: int
    phase_started_at: datetime
    failures: int = 0
    extensions: int = 0
    reason: str = ""
    first: bool = False  # no champion existed: nothing to compare with

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["phase_started_at"] = self.phase_started_at.isoformat()
        return d


@dataclass(frozen=True)
class Observation:
    now: datetime
    approval: Literal["approved", "rejected"] | None
    decision: Literal["promote", "rollback", "continue", "inconclusive"] | None
    decision_reason: str = ""
    slo_ok: bool = True
    slo_reason: str = ""
    samples: int = 0  # per-arm minimum so far in this phase


@dataclass(frozen=True)
class Traffic:
    """What should serve: (variant, version, mode, weight) rows; champion first."""

    rows: tuple[tuple[str, str, str, int], ...]


def start(version: str, now: datetime, spec: DeploymentSpec, has_champion: bool) -> RolloutState:
    if spec.approval == "manual":
        return RolloutState(
            version, "approval", 0, now, first=not has_champion, reason="waiting for approval"
        )
    return _after_approval(
        RolloutState(version, "approval", 0, now, first=not has_champion),
        now,
        spec,
        "approved by policy (auto)",
    )


def _after_approval(
    s: RolloutState, now: datetime, spec: DeploymentSpec, reason: str
) -> RolloutState:
    if s.first or spec.strategy == "direct":
        return replace(
            s,
            phase="promoting",
            phase_started_at=now,
            reason=reason + ("; first model, nothing to compare" if s.first else ""),
        )
    if spec.shadow is not None:
        return replace(s, phase="shadow", phase_started_at=now, reason=reason)
    return _first_live(s, now, spec, reason)


def _first_live(s: RolloutState, now: datetime, spec: DeploymentSpec, reason: str) -> RolloutState:
    if spec.strategy == "blue_green":
        return replace(
            s, phase="switched", step=0, phase_started_at=now, extensions=0, reason=reason
        )
    if not spec.steps:
        return replace(s, phase="promoting", phase_started_at=now, reason=reason)
    return replace(s, phase="step", step=0, phase_started_at=now, extensions=0, reason=reason)


def _phase_length(s: RolloutState, spec: DeploymentSpec) -> tuple[float, int]:
    """(seconds to wait, samples to wait for) before the phase is judged."""
    if s.phase == "shadow" and spec.shadow is not None:
        return spec.shadow.duration.total_seconds(), max(
            spec.shadow.min_samples, spec.analysis.min_samples
        )
    if s.phase == "step":
        return spec.steps[s.step].pause.total_seconds(), spec.analysis.min_samples
    pause = spec.steps[-1].pause if spec.steps else spec.shadow.duration if spec.shadow else None
    return (pause.total_seconds() if pause else 0.0), spec.analysis.min_samples


def advance(s: RolloutState, spec: DeploymentSpec, obs: Observation) -> RolloutState:
    """The next state; the same state when nothing is due (level-based, idempotent)."""
    if s.phase in TERMINAL or s.phase in ("promoting", "rolling_back", "paused"):
        return s
    if s.phase == "approval":
        if obs.approval == "rejected":
            return replace(
                s, phase="rolling_back", phase_started_at=obs.now, reason="rejected by a reviewer"
            )
        if obs.approval == "approved":
            return _after_approval(s, obs.now, spec, "approved by a reviewer")
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
    wait, need = _phase_length(s, spec)
    elapsed = (obs.now - s.phase_started_at).total_seconds()
    if elapsed < wait or obs.samples < need or obs.decision is None:
        return s  # not judged yet: no data is no reason
    final = s.phase == "switched" or (s.phase == "step" and s.step == len(spec.steps) - 1)
    if obs.decision == "promote" or (obs.decision == "continue" and not final):
        why = f"analysis: {obs.decision_reason}"
        if final:
            return replace(s, phase="promoting", phase_started_at=obs.now, reason=why)
        if s.phase == "shadow":
            return _first_live(s, obs.now, spec, why)
        return replace(s, step=s.step + 1, phase_started_at=obs.now, extensions=0, reason=why)
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


def traffic(s: RolloutState, spec: DeploymentSpec, champion: str | None) -> Traffic:
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
    if s.phase == "switched":
        return Traffic((("champion", champion, "shadow", 0), ("challenger", c, "live", 100)))
    w = spec.steps[s.step].weight
    return Traffic((("champion", champion, "live", 100 - w), ("challenger", c, "live", w)))


def intended_weights(s: RolloutState, spec: DeploymentSpec) -> tuple[float, float]:
    """(champion, challenger) share of scored requests in this phase, for the SRM check."""
    if s.phase == "step" and spec.steps:
        w = spec.steps[s.step].weight
        return (100.0 - w, float(w)) if 0 < w < 100 else (50.0, 50.0)
    return (50.0, 50.0)  # shadow and switched: both score every request
