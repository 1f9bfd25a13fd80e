"""Every registered rollout strategy passes the public conformance suite, one test per check."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tradeloop.control.rollout_conformance import ROLLOUT_CHECKS, check_rollout_strategy, specs
from tradeloop.control.rollout_state import RolloutState, Traffic
from tradeloop.control.rollout_strategies import (
    BlueGreen,
    Canary,
    Direct,
    register_rollout_strategy,
    registered_rollout_strategies,
    rollout_strategy,
    strategy_for_phase,
)
from tradeloop.errors import BadInput
from tradeloop.spec import DeploymentSpec

CASES = [
    (name, spec, check)
    for name in registered_rollout_strategies()
    for spec in specs()
    for check in ROLLOUT_CHECKS
]


@pytest.mark.parametrize(("name", "spec", "check"), CASES, ids=["-".join(c) for c in CASES])
def test_conformance(name: str, spec: str, check: str) -> None:
    ROLLOUT_CHECKS[check](rollout_strategy(name), specs()[spec])


def test_every_registered_strategy_is_covered() -> None:
    assert set(registered_rollout_strategies()) == {"blue_green", "canary", "direct"}
    assert {c[0] for c in CASES} == set(registered_rollout_strategies())


class Leaky(Canary):
    """Broken on purpose: the champion keeps all its weight while the challenger gets some."""

    name = "leaky"
    live_phase: str | None = "leaky_step"

    def traffic(self, s: RolloutState, spec: DeploymentSpec, champion: str) -> Traffic:
        w = spec.steps[s.step].weight
        return Traffic((("champion", champion, "live", 100), ("challenger", s.version, "live", w)))

    def enter(self, s: RolloutState, now: datetime, spec: DeploymentSpec, why: str) -> RolloutState:
        return replace(super().enter(s, now, spec, why), phase="leaky_step")  # type: ignore[arg-type]  # a plug-in phase


class Endless(Canary):
    """Broken on purpose: no step is ever final, so passing verdicts never promote."""

    name = "endless"
    live_phase: str | None = "endless_step"

    def is_final(self, s: RolloutState, spec: DeploymentSpec) -> bool:
        return False

    def pause(self, s: RolloutState, spec: DeploymentSpec) -> timedelta:
        return timedelta(hours=1)

    def traffic(self, s: RolloutState, spec: DeploymentSpec, champion: str) -> Traffic:
        return Traffic((("champion", champion, "live", 90), ("challenger", s.version, "live", 10)))

    def split(self, s: RolloutState, spec: DeploymentSpec) -> tuple[float, float] | None:
        return (90.0, 10.0)

    def enter(self, s: RolloutState, now: datetime, spec: DeploymentSpec, why: str) -> RolloutState:
        return replace(super().enter(s, now, spec, why), phase="endless_step")  # type: ignore[arg-type]  # a plug-in phase


class Squatter(Canary):
    name = "squatter"  # and canary's live phase, "step"


def test_the_suite_catches_broken_weights() -> None:
    failures = check_rollout_strategy(Leaky())
    failed = {f.split(":")[0] for f in failures}
    assert {"weights[shadow]", "weights[no_shadow]", "inconclusive_waits[shadow]"} <= failed
    assert any("live weights add up to 110, not 100" in f for f in failures)
    assert not any(f.startswith(("promotes_on_pass", "level_based")) for f in failures)


def test_the_suite_catches_a_strategy_that_never_promotes() -> None:
    failures = check_rollout_strategy(Endless())
    failed = {f.split(":")[0] for f in failures}
    assert {"promotes_on_pass[shadow]", "continue_never_promotes[no_shadow]"} <= failed
    assert any("no decision after 50 'promote' verdicts" in f for f in failures)


def test_registry() -> None:
    assert isinstance(rollout_strategy("canary"), Canary)
    assert isinstance(rollout_strategy("blue_green"), BlueGreen)
    assert isinstance(rollout_strategy("direct"), Direct)
    assert isinstance(strategy_for_phase("step"), Canary)
    assert isinstance(strategy_for_phase("switched"), BlueGreen)
    assert strategy_for_phase("shadow") is None
    with pytest.raises(BadInput, match=r"unknown rollout strategy 'nope'; known: \['blue_green'"):
        rollout_strategy("nope")
    with pytest.raises(BadInput, match="is named 'canary', not 'other'"):
        register_rollout_strategy("other", Canary())
    with pytest.raises(BadInput, match="phase 'step' already belongs to strategy 'canary'"):
        register_rollout_strategy("squatter", Squatter())
