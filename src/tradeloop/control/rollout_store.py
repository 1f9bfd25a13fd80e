"""The rollout's record in the store, and the deployments table as the rollout wants it.

A rollout is level-based: the deployer reads its state back from `rollouts` every run, so
what is written here is all a restarted controller knows. Each write is audited.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import select, update

from tradeloop.clock import utc
from tradeloop.control import rollout as ro
from tradeloop.control.world import World
from tradeloop.store import deployments as dep
from tradeloop.store.tables import rollouts, version_decisions


def load_rollout(world: World, name: str, version: str) -> ro.RolloutState | None:
    with world.store.engine.connect() as c:
        r = c.execute(
            select(rollouts).where(rollouts.c.model_name == name, rollouts.c.version == version)
        ).first()
    if r is None:
        return None
    extra = r.analysis or {}
    return ro.RolloutState(
        r.version,
        r.phase,
        r.step,
        utc(r.phase_started_at),
        int(extra.get("failures", 0)),
        int(extra.get("extensions", 0)),
        r.reason,
        bool(extra.get("first", False)),
    )


def save_rollout(
    world: World,
    name: str,
    s: ro.RolloutState,
    strategy: str,
    verdict: dict[str, Any] | None,
    *,
    new: bool,
) -> None:
    now = world.clock.now()
    extra = {
        "failures": s.failures,
        "extensions": s.extensions,
        "first": s.first,
        "verdict": verdict,
    }
    values = dict(
        phase=s.phase,
        step=s.step,
        phase_started_at=s.phase_started_at,
        status="done" if s.phase in ro.TERMINAL else "active",
        reason=s.reason,
        analysis=extra,
        updated_at=now,
    )
    with world.store.begin() as c:
        if new:
            c.execute(
                rollouts.insert().values(
                    model_name=name, version=s.version, strategy=strategy, **values
                )
            )
        else:
            where = (rollouts.c.model_name == name, rollouts.c.version == s.version)
            if verdict is None:  # a step that judged nothing keeps the last analysis on record
                before = c.execute(select(rollouts.c.analysis).where(*where)).scalar()
                extra["verdict"] = (before or {}).get("verdict")
            c.execute(update(rollouts).where(*where).values(**values))
        world.store.audit.append(
            "deployer",
            f"rollout.{s.phase}",
            f"model:{name}/{s.version}",
            {"step": s.step, "reason": s.reason, "verdict": verdict},
            conn=c,
        )


def approval_of(world: World, name: str, version: str) -> Literal["approved", "rejected"] | None:
    with world.store.engine.connect() as c:
        rows = c.execute(
            select(version_decisions.c.decision).where(
                version_decisions.c.model_name == name, version_decisions.c.version == version
            )
        ).all()
    decisions = {r.decision for r in rows}
    return (
        "rejected" if "rejected" in decisions else "approved" if "approved" in decisions else None
    )


def apply_traffic(world: World, name: str, t: ro.Traffic, reason: str) -> bool:
    want = [dep.Deployed(name, v, ver, mode, w) for v, ver, mode, w in t.rows]  # type: ignore[arg-type]  # rows hold the mode as str
    before = dep.current(world.store, name)
    after = dep.apply(world.store, name, want, actor="deployer", reason=reason)
    return sorted(before, key=lambda d: d.variant) != sorted(after, key=lambda d: d.variant)
