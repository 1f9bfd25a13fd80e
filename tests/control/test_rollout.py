"""The rollout state machine: every transition, and the traps it must not fall into."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tradeloop.control.rollout import Observation, RolloutState, advance, start, traffic
from tradeloop.spec import DeploymentSpec

T0 = datetime(2024, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


def _spec(**kw: object) -> DeploymentSpec:
    base = {
        "shadow": {"duration": "2h", "min_samples": 50},
        "steps": [{"weight": 10, "pause": "1h"}, {"weight": 50, "pause": "1h"}],
        "analysis": {"min_samples": 50, "failure_limit": 1, "max_extensions": 2},
    }
    return DeploymentSpec.model_validate({**base, **kw})


def _obs(
    t: datetime,
    decision: str | None = "continue",
    samples: int = 100,
    slo_ok: bool = True,
    approval: str | None = None,
) -> Observation:
    return Observation(t, approval, decision, "because", slo_ok, "p99 too high", samples)  # type: ignore[arg-type]


def test_first_model_is_promoted_by_policy() -> None:
    s = start("1", T0, _spec(), has_champion=False)
    assert s.phase == "promoting" and "first model" in s.reason and "policy" in s.reason
    assert traffic(s, _spec(), None).rows == (("champion", "1", "live", 100),)


def test_manual_approval_waits_then_proceeds_or_rejects() -> None:
    spec = _spec(approval="manual")
    s = start("2", T0, spec, has_champion=True)
    assert s.phase == "approval"
    for _ in range(3):  # nothing happens without an approval, however long
        s = advance(s, spec, _obs(T0 + 10 * H, "promote"))
        assert s.phase == "approval"
    assert traffic(s, spec, "1").rows == (("champion", "1", "live", 100),)
    assert advance(s, spec, _obs(T0, approval="approved")).phase == "shadow"
    assert advance(s, spec, _obs(T0, approval="rejected")).phase == "rolling_back"


def test_full_canary_path_to_promotion() -> None:
    spec = _spec()
    s = start("2", T0, spec, has_champion=True)
    assert s.phase == "shadow"
    assert traffic(s, spec, "1").rows == (
        ("champion", "1", "live", 100),
        ("challenger", "2", "shadow", 0),
    )
    s = advance(s, spec, _obs(T0 + H))  # pause not over
    assert s.phase == "shadow"
    s = advance(s, spec, _obs(T0 + 2 * H))
    assert (s.phase, s.step) == ("step", 0)
    assert traffic(s, spec, "1").rows == (
        ("champion", "1", "live", 90),
        ("challenger", "2", "live", 10),
    )
    s = advance(s, spec, _obs(T0 + 3 * H))
    assert (s.phase, s.step) == ("step", 1)
    # the final step needs evidence of improvement: 'continue' extends, never promotes
    s2 = advance(s, spec, _obs(T0 + 4 * H, "continue"))
    assert s2.phase == "step" and s2.extensions == 1
    s3 = advance(s2, spec, _obs(T0 + 5 * H, "promote"))
    assert s3.phase == "promoting"
    assert traffic(s3, spec, "1").rows == (("champion", "2", "live", 100),)


def test_no_data_is_no_reason_to_move() -> None:
    spec = _spec()
    s = start("2", T0, spec, has_champion=True)
    for decision in ("promote", "continue", None):
        assert advance(s, spec, _obs(T0 + 100 * H, decision, samples=3)) == s
    assert advance(s, spec, _obs(T0 + 100 * H, None, samples=1000)) == s


def test_harm_rolls_back_at_once_even_before_the_pause() -> None:
    spec = _spec()
    s = start("2", T0, spec, has_champion=True)
    r = advance(s, spec, _obs(T0 + timedelta(minutes=5), "rollback"))
    assert r.phase == "rolling_back" and "analysis" in r.reason
    assert traffic(r, spec, "1").rows == (("champion", "1", "live", 100),)


def test_slo_breaches_count_against_the_failure_limit() -> None:
    spec = _spec()
    s = start("2", T0, spec, has_champion=True)
    s = advance(s, spec, _obs(T0, slo_ok=False))
    assert s.phase == "shadow" and s.failures == 1
    s = advance(s, spec, _obs(T0, slo_ok=False))
    assert s.phase == "rolling_back" and "SLO" in s.reason


def test_inconclusive_extends_then_parks_never_promotes() -> None:
    spec = _spec()
    s = start("2", T0, spec, has_champion=True)
    t = T0
    phases = []
    for _ in range(4):
        t += 3 * H
        s = advance(s, spec, _obs(t, "inconclusive"))
        phases.append(s.phase)
    assert phases == ["shadow", "shadow", "paused", "paused"]
    assert s.extensions == 2 and "human" in s.reason


def test_blue_green_switches_then_judges() -> None:
    spec = _spec(strategy="blue_green")
    s = start("2", T0, spec, has_champion=True)
    s = advance(s, spec, _obs(T0 + 2 * H))
    assert s.phase == "switched"
    assert traffic(s, spec, "1").rows == (
        ("champion", "1", "shadow", 0),
        ("challenger", "2", "live", 100),
    )
    assert advance(s, spec, _obs(T0 + 4 * H, "rollback")).phase == "rolling_back"
    assert advance(s, spec, _obs(T0 + 4 * H, "promote")).phase == "promoting"


def test_terminal_and_deciding_states_are_fixed_points() -> None:
    spec = _spec()
    for phase in ("promoting", "promoted", "rolling_back", "rolled_back", "paused"):
        s = RolloutState("2", phase, 0, T0)  # type: ignore[arg-type]
        assert advance(s, spec, _obs(T0 + 99 * H, "rollback", slo_ok=False)) == s


def test_an_unapproved_first_model_gets_no_traffic() -> None:
    spec = _spec(approval="manual")
    s = start("1", T0, spec, has_champion=False)
    assert s.phase == "approval" and traffic(s, spec, None).rows == ()


def test_a_recorded_live_phase_is_run_by_the_strategy_that_owns_it() -> None:
    """Re-planning reads the recorded phase: a canary step stays one if the spec changes."""
    canary, bg = _spec(), _spec(strategy="blue_green")
    s = advance(start("2", T0, canary, has_champion=True), canary, _obs(T0 + 2 * H))
    assert (s.phase, s.step) == ("step", 0)
    assert traffic(s, bg, "1").rows == traffic(s, canary, "1").rows
    nxt = advance(s, bg, _obs(T0 + 3 * H))
    assert (nxt.phase, nxt.step) == ("step", 1) and nxt == advance(s, canary, _obs(T0 + 3 * H))


def test_direct_skips_shadow_and_analysis() -> None:
    spec = _spec(strategy="direct")
    s = start("2", T0, spec, has_champion=True)
    assert s.phase == "promoting" and s.reason == "approved by policy (auto)"
    assert traffic(s, spec, "1").rows == (("champion", "2", "live", 100),)
