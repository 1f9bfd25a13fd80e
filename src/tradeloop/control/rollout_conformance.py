"""The one conformance suite every rollout strategy passes, built-in or plug-in.

    from tradeloop.control.rollout_conformance import check_rollout_strategy
    assert check_rollout_strategy(MyStrategy()) == []

`check_rollout_strategy(strategy)` drives the rollout state machine with `strategy` through
recorded analysis verdicts (pass = `promote`, fail = `rollback`, `inconclusive`, no data, SLO
breaches), with and without a shadow phase, and returns the failures as readable lines
(`check[spec]: what was wrong`); an empty list means it conforms. The strategy need not be
registered. For one test per check, iterate `ROLLOUT_CHECKS`; each raises
`RolloutConformanceError`.

The contract: passing verdicts reach `promoting` through the strategy's live phase, and only a
`promote` verdict promotes (`continue` ends parked); a failure rolls back at once, even before
the pause ends; inconclusive waits (extends, then parks), never decides; nothing moves without
data; planning is deterministic and level-based (the same recorded state, or one read back
from its dict, gives the same next step and traffic); traffic weights stay in 0..100, live
weights add up to 100, and end at 100 for the challenger on promotion and 0 on rollback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from tradeloop.conformance import collect_failures
from tradeloop.control.rollout import advance, intended_split, start, traffic
from tradeloop.control.rollout_state import SETTLED, Decision, Observation, RolloutState
from tradeloop.control.rollout_strategies import RolloutStrategy
from tradeloop.errors import TradeloopError
from tradeloop.spec import DeploymentSpec

T0 = datetime(2024, 1, 1, tzinfo=UTC)
LATER = timedelta(days=30)  # longer than any phase's pause
CHAMPION, CHALLENGER = "1", "2"
SHARED_PHASES = frozenset({"approval", "shadow"}) | SETTLED
MAX_MOVES = 50
DECISIONS: tuple[Decision, ...] = ("promote", "continue", "rollback", "inconclusive")


class RolloutConformanceError(TradeloopError):
    """A rollout strategy broke the contract; the message says which rule and how."""


def _expect(ok: bool, message: str) -> None:
    if not ok:
        raise RolloutConformanceError(message)


def specs() -> dict[str, DeploymentSpec]:
    """The deployments every check runs under: with a shadow phase and without one."""
    base = {
        "shadow": {"duration": "2h", "min_samples": 50},
        "steps": [{"weight": 10, "pause": "1h"}, {"weight": 50, "pause": "1h"}],
        "analysis": {"min_samples": 50, "failure_limit": 1, "max_extensions": 2},
    }
    return {
        "shadow": DeploymentSpec.model_validate(base),
        "no_shadow": DeploymentSpec.model_validate({**base, "shadow": None}),
    }


def _obs(now: datetime, decision: Decision | None, samples: int = 10_000) -> Observation:
    return Observation(now, None, decision, "because", True, "", samples)


def _path(st: RolloutStrategy, spec: DeploymentSpec, decision: Decision) -> list[RolloutState]:
    """Every state from `start` on, the same verdict each time a phase has run its length."""
    states = [start(CHALLENGER, T0, spec, has_champion=True, strategy=st)]
    while states[-1].phase not in SETTLED:
        s = states[-1]
        nxt = advance(s, spec, _obs(s.phase_started_at + LATER, decision), st)
        _expect(nxt != s, f"a {decision!r} verdict after the pause left {s.phase} unchanged")
        _expect(len(states) < MAX_MOVES, f"no decision after {MAX_MOVES} {decision!r} verdicts")
        states.append(nxt)
    return states


def _judged(st: RolloutStrategy, spec: DeploymentSpec) -> list[RolloutState]:
    """The states an analysis judges on the way to promotion."""
    return [s for s in _path(st, spec, "promote") if s.phase not in SETTLED]


def _check_traffic(st: RolloutStrategy, spec: DeploymentSpec, s: RolloutState) -> None:
    rows = traffic(s, spec, CHAMPION, st).rows
    where = f"traffic in {s.phase} {s.step}"
    _expect(all(0 <= w <= 100 for *_, w in rows), f"{where}: a weight outside 0..100: {rows}")
    live = sum(w for _, _, mode, w in rows if mode == "live")
    _expect(live == 100, f"{where}: live weights add up to {live}, not 100: {rows}")
    _expect(all(w == 0 for _, _, mode, w in rows if mode == "shadow"), f"{where}: {rows}")
    _expect(bool(rows) and rows[0][0] == "champion", f"{where}: the champion row is not first")
    if s.phase in ("promoting", "promoted"):
        _expect(rows == (("champion", CHALLENGER, "live", 100),), f"{where}: {rows}")
    if s.phase in ("rolling_back", "rolled_back"):
        _expect(rows == (("champion", CHAMPION, "live", 100),), f"{where}: {rows}")
    split = intended_split(s, spec, st)
    if split is not None:
        ok = len(split) == 2 and all(0 <= x <= 100 for x in split) and sum(split) == 100
        _expect(ok, f"intended split in {s.phase} {s.step} is {split}")


# -------------------------------------------------------------------------------- the checks


def check_interface(st: RolloutStrategy, spec: DeploymentSpec) -> None:
    _expect(isinstance(st.name, str) and bool(st.name), f"name is {st.name!r}")
    _expect(isinstance(st.event, str) and bool(st.event), f"event is {st.event!r}")
    _expect(
        st.live_phase is None or st.live_phase not in SHARED_PHASES,
        f"live_phase {st.live_phase!r} is a shared phase",
    )


def check_promotes_on_pass(st: RolloutStrategy, spec: DeploymentSpec) -> None:
    path = _path(st, spec, "promote")
    phases = [s.phase for s in path]
    _expect(phases[-1] == "promoting", f"passing verdicts ended in {phases[-1]}: {phases}")
    if st.live_phase is not None:
        _expect(st.live_phase in phases, f"never entered {st.live_phase!r}: {phases}")
    if spec.shadow is not None and st.uses_shadow:
        _expect(phases[0] == "shadow", f"uses_shadow, but the rollout started in {phases[0]}")


def check_continue_never_promotes(st: RolloutStrategy, spec: DeploymentSpec) -> None:
    path = _path(st, spec, "continue")
    if len(path) == 1 and path[0].phase == "promoting":
        return  # promotes without analysis (direct): no verdict to weigh
    _expect(path[-1].phase == "paused", f"'continue' verdicts ended in {path[-1].phase}")


def check_rolls_back_on_fail(st: RolloutStrategy, spec: DeploymentSpec) -> None:
    for s in _judged(st, spec):
        r = advance(s, spec, _obs(s.phase_started_at + timedelta(seconds=1), "rollback", 0), st)
        _expect(r.phase == "rolling_back", f"'rollback' in {s.phase} {s.step} gave {r.phase}")
        _check_traffic(st, spec, r)


def check_slo_breaches_roll_back(st: RolloutStrategy, spec: DeploymentSpec) -> None:
    for s in _judged(st, spec):
        r = s
        for _ in range(spec.analysis.failure_limit + 1):
            r = advance(r, spec, replace(_obs(r.phase_started_at, None, 0), slo_ok=False), st)
        _expect(r.phase == "rolling_back", f"SLO breaches in {s.phase} {s.step} gave {r.phase}")


def check_inconclusive_waits(st: RolloutStrategy, spec: DeploymentSpec) -> None:
    for s in _judged(st, spec):
        r = s
        for i in range(spec.analysis.max_extensions):
            r = advance(r, spec, _obs(r.phase_started_at + LATER, "inconclusive"), st)
            same = (r.phase, r.step, r.extensions) == (s.phase, s.step, s.extensions + i + 1)
            _expect(same, f"inconclusive in {s.phase} {s.step} gave {r.phase} {r.step}")
            _check_traffic(st, spec, r)
        r = advance(r, spec, _obs(r.phase_started_at + LATER, "inconclusive"), st)
        _expect(r.phase == "paused", f"inconclusive past the extensions gave {r.phase}")
        _check_traffic(st, spec, r)


def check_no_data_no_move(st: RolloutStrategy, spec: DeploymentSpec) -> None:
    for s in _judged(st, spec):
        for decision in DECISIONS[:2] + DECISIONS[3:]:  # all but rollback, which needs none
            no_samples = _obs(s.phase_started_at + LATER, decision, samples=0)
            _expect(
                advance(s, spec, no_samples, st) == s, f"{decision!r} on no data moved {s.phase}"
            )
        no_verdict = _obs(s.phase_started_at + LATER, None)
        _expect(advance(s, spec, no_verdict, st) == s, f"no verdict moved {s.phase} {s.step}")
        shadow = spec.shadow.duration if s.phase == "shadow" and spec.shadow else None
        pause = shadow or st.pause(s, spec)
        if pause > timedelta(seconds=1):  # judged only once the phase has run its length
            early = _obs(s.phase_started_at + pause - timedelta(seconds=1), "promote")
            _expect(advance(s, spec, early, st) == s, f"{s.phase} {s.step} judged before its pause")


def check_level_based(st: RolloutStrategy, spec: DeploymentSpec) -> None:
    first = start(CHALLENGER, T0, spec, has_champion=True, strategy=st)
    _expect(start(CHALLENGER, T0, spec, has_champion=True, strategy=st) == first, "start varies")
    for decision in DECISIONS:
        for s in _path(st, spec, decision):
            again = RolloutState.from_dict(s.to_dict())  # as the store gives it back
            _expect(again == s, f"{s.phase} does not survive to_dict/from_dict")
            obs = _obs(s.phase_started_at + LATER, decision)
            nxt = advance(s, spec, obs, st)
            _expect(advance(again, spec, obs, st) == nxt, f"re-planning {s.phase} differs")
            _expect(traffic(again, spec, CHAMPION, st) == traffic(s, spec, CHAMPION, st), "traffic")
            if s.phase in SETTLED:
                _expect(nxt == s, f"settled phase {s.phase} moved to {nxt.phase}")


def check_weights(st: RolloutStrategy, spec: DeploymentSpec) -> None:
    for decision in DECISIONS:
        for s in _path(st, spec, decision):
            _check_traffic(st, spec, s)
            _check_traffic(st, spec, replace(s, phase="rolled_back"))
    done = replace(_path(st, spec, "promote")[-1], phase="promoted")
    _check_traffic(st, spec, done)


def check_approval_and_first_model(st: RolloutStrategy, spec: DeploymentSpec) -> None:
    first = start(CHALLENGER, T0, spec, has_champion=False, strategy=st)
    _expect(first.phase == "promoting", f"a first model started in {first.phase}")
    manual = spec.model_copy(update={"approval": "manual"})
    s = start(CHALLENGER, T0, manual, has_champion=True, strategy=st)
    _expect(s.phase == "approval", f"manual approval started in {s.phase}")
    _expect(advance(s, manual, _obs(T0 + LATER, "promote"), st) == s, "moved without approval")
    waiting = traffic(s, manual, CHAMPION, st).rows
    _expect(waiting == (("champion", CHAMPION, "live", 100),), f"awaiting approval: {waiting}")
    approved = advance(s, manual, replace(_obs(T0, None), approval="approved"), st)
    auto = start(CHALLENGER, T0, spec, has_champion=True, strategy=st)
    _expect(
        approved.phase == auto.phase, f"approved went to {approved.phase}, auto to {auto.phase}"
    )
    rejected = advance(s, manual, replace(_obs(T0, None), approval="rejected"), st)
    _expect(rejected.phase == "rolling_back", f"rejected went to {rejected.phase}")


ROLLOUT_CHECKS: dict[str, Callable[[RolloutStrategy, DeploymentSpec], None]] = {
    f.__name__.removeprefix("check_"): f
    for f in (
        check_interface,
        check_promotes_on_pass,
        check_continue_never_promotes,
        check_rolls_back_on_fail,
        check_slo_breaches_roll_back,
        check_inconclusive_waits,
        check_no_data_no_move,
        check_level_based,
        check_weights,
        check_approval_and_first_model,
    )
}


def check_rollout_strategy(strategy: RolloutStrategy) -> list[str]:
    """Every check under every spec; the failures as `check[spec]: message` (empty: conforms)."""
    checks = {name: functools.partial(check, strategy) for name, check in ROLLOUT_CHECKS.items()}
    return collect_failures(checks, specs(), RolloutConformanceError)


__all__ = ["ROLLOUT_CHECKS", "RolloutConformanceError", "check_rollout_strategy", "specs"]
