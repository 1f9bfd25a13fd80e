"""What the demo tells: its result, the checks that the story happened in order, the summary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tradeloop.control.world import World
from tradeloop.demo.trader import PaperTrader
from tradeloop.registry.mlflow_registry import CHAMPION
from tradeloop.spec import Spec


@dataclass
class DemoResult:
    events: list[dict[str, Any]]
    state: dict[str, Any]
    project: str
    seconds: float
    ok: bool
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "state": self.state,
            "project": self.project,
            "seconds": round(self.seconds, 1),
            "ok": self.ok,
            "problems": self.problems,
        }


def phase_label(phase: str, step: int | None, spec: Spec) -> str:
    """`step`, 1 -> "canary 50%": the rollout phase as a reader of the timeline wants it."""
    steps = spec.deployment.steps
    if phase == "step" and step is not None and 0 <= step < len(steps):
        return f"canary {steps[step].weight}%"
    return phase


def promoted_after_drift(events: list[dict[str, Any]]) -> bool:
    """The moment to inject the bad model: drift fired and a second model was promoted."""
    drift = any(e["action"] == "alert_firing" for e in events)
    promotions = [e for e in events if e["action"] == "promote"]
    return drift and len(promotions) >= 2


def final_state(world: World, trader: PaperTrader) -> dict[str, Any]:
    from tradeloop.store import deployments as dep

    reg, name = world.registry, world.name
    versions = reg.versions(name)
    champ = reg.by_alias(name, CHAMPION)
    desired = world.desired()
    return {
        "champion": champ.version if champ else None,
        "serving": [d.to_dict() for d in dep.current(world.store, name)],
        "git_pin": desired.pin.to_dict() if desired.pin else None,
        "versions": [
            {
                "version": v.version,
                "aliases": v.aliases,
                "rejected": v.rejected,
                "reason": v.tags.get("reason"),
            }
            for v in versions
        ],
        "audit": world.store.audit.verify().to_dict(),
        "requests": trader.requests,
        "request_errors": trader.errors,
        "clock": world.clock.now().isoformat(),
    }


def check_story(events: list[dict[str, Any]], injected: str | None) -> list[str]:
    """What is missing from, or out of order in, the expected story (empty: it all happened)."""

    def first(action: str, version: str | None = None) -> int | None:
        for i, e in enumerate(events):
            if e["action"] == action and (version is None or e["version"] == version):
                return i
        return None

    problems = []
    order = [
        ("promote v1", first("promote", "1")),
        ("drift alert", first("alert_firing")),
        ("train v2 for drift", first("registered", "2")),
        ("promote v2", first("promote", "2")),
        ("rollback of the bad model", first("rollback", injected) if injected else None),
    ]
    last = -1
    for what, idx in order:
        if idx is None:
            problems.append(f"missing: {what}")
        elif idx < last:
            problems.append(f"out of order: {what}")
        else:
            last = idx
    return problems


def summary_lines(result: DemoResult) -> list[str]:
    s = result.state
    return [
        f"champion: v{s['champion']}; serving: "
        + ", ".join(
            f"{d['variant']} v{d['version']} {d['mode']} {d['weight']}%" for d in s["serving"]
        ),
        f"git pins v{(s['git_pin'] or {}).get('version')}; rejected "
        f"{(s['git_pin'] or {}).get('rejected')}",
        f"{s['requests']} requests to the gateway, {s['request_errors']} errors; "
        f"audit chain {'intact' if s['audit']['ok'] else 'BROKEN'} ({s['audit']['entries']} "
        "entries)",
        f"project kept at {result.project} (tradeloop status --spec {result.project})",
    ]


def dumps(result: DemoResult) -> str:
    return json.dumps(result.to_dict(), indent=2, default=str)
