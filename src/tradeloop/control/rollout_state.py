"""What a rollout records and reads: its state, one observation, and the traffic it wants.

These are plain values, so the state machine (`control.rollout`) and the strategies
(`control.rollout_strategies`) are pure functions of them, and a state read back from the
store plans exactly as the one written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

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
Decision = Literal["promote", "rollback", "continue", "inconclusive"]
TERMINAL: frozenset[str] = frozenset({"promoted", "rolled_back"})
# decided or parked: the machine never moves them; the deployer carries out the first two
SETTLED: frozenset[str] = TERMINAL | {"promoting", "rolling_back", "paused"}


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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RolloutState:
        return cls(**{**d, "phase_started_at": datetime.fromisoformat(d["phase_started_at"])})


@dataclass(frozen=True)
class Observation:
    now: datetime
    approval: Literal["approved", "rejected"] | None
    decision: Decision | None
    decision_reason: str = ""
    slo_ok: bool = True
    slo_reason: str = ""
    samples: int = 0  # per-arm minimum so far in this phase


@dataclass(frozen=True)
class Traffic:
    """What should serve: (variant, version, mode, weight) rows; champion first."""

    rows: tuple[tuple[str, str, str, int], ...]
