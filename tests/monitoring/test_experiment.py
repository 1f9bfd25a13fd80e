"""Champion-vs-challenger statistics, validated by simulation.

The simulations run 1,000 experiments at once with numpy, peek after every batch of 50 up to
2,000 per arm, and count an experiment as a false positive if *any* peek promotes or rolls
back. Seeds are fixed, so the rates are deterministic; each assertion also holds with a wide
Monte-Carlo margin (the binomial standard error of a rate near 0.015 over 1,000 runs is ~0.004,
so the measured ~0.01-0.02 sits many standard errors below alpha = 0.05).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import FrozenInstanceError

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from tradeloop.errors import BadInput
from tradeloop.monitoring.experiment import ArmStats, Verdict, analyze
from tradeloop.monitoring.sequential import (
    MomentArrays,
    anytime_p_value,
    difference_interval,
    sequential_halfwidth,
    sequential_rho,
)
from tradeloop.monitoring.srm import srm_check
from tradeloop.spec import AnalysisSpec

ALPHA = 0.05
EXPERIMENTS = 1000
PER_ARM = 2000
BATCH = 50
SPEC = AnalysisSpec(metric="pnl", alpha=ALPHA, min_samples=100)
Draw = Callable[[np.random.Generator, tuple[int, int]], npt.NDArray[np.float64]]


def _binary(p: float) -> Draw:
    return lambda rng, shape: rng.binomial(1, p, shape).astype(np.float64)


def _normal(mean: float) -> Draw:
    return lambda rng, shape: rng.normal(mean, 1.0, shape)


def _fat_tailed(mean: float) -> Draw:
    """Student t with 3 degrees of freedom: PnL has fat tails, the CLT has to work for it."""
    return lambda rng, shape: mean + rng.standard_t(3, shape)


def _moments(x: npt.NDArray[np.float64], ns: npt.NDArray[np.int64]) -> MomentArrays:
    """Cumulative (n, sum, sum_sq) at each peek, one row per experiment."""
    return MomentArrays(
        np.broadcast_to(ns, (x.shape[0], ns.size)),
        np.cumsum(x, axis=1)[:, ns - 1],
        np.cumsum(x * x, axis=1)[:, ns - 1],
    )


def _simulate(
    champion: Draw,
    challenger: Draw,
    *,
    binary: bool,
    seed: int,
    challenger_share: float = 0.5,
    per_arm: int = PER_ARM,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Peek after every batch; return each experiment's first decision (+1 promote, -1
    rollback, 0 none) and whether a fixed-n t-test would ever have rejected at those peeks."""
    rng = np.random.default_rng(seed)
    n_b = np.arange(BATCH, per_arm + 1, BATCH)
    n_a = np.rint(n_b * (1 - challenger_share) / challenger_share).astype(np.int64)
    keep = np.minimum(n_a, n_b) >= SPEC.min_samples
    n_a, n_b = n_a[keep], n_b[keep]
    a = _moments(champion(rng, (EXPERIMENTS, int(n_a[-1]))), n_a)
    b = _moments(challenger(rng, (EXPERIMENTS, int(n_b[-1]))), n_b)
    iv = difference_interval(a, b, ALPHA, 2 * PER_ARM, binary=binary)  # n* fixed in advance
    sign = np.where(iv.lower > 0, 1, np.where(iv.upper < 0, -1, 0))
    first = sign[np.arange(EXPERIMENTS), np.argmax(sign != 0, axis=1)]
    # The classical Welch t-test, computed independently from the same sums.
    mean_a, mean_b = a.sum / n_a, b.sum / n_b
    var_a = (a.sum_sq - a.sum**2 / n_a) / (n_a - 1)
    var_b = (b.sum_sq - b.sum**2 / n_b) / (n_b - 1)
    t = (mean_b - mean_a) / np.sqrt(var_a / n_a + var_b / n_b)
    naive = np.abs(t) > stats.t.ppf(1 - ALPHA / 2, n_a + n_b - 2)
    return first, naive


# ----------------------------------------------------------------------- always-valid inference

NULLS = {
    "hit_rate": (_binary(0.53), True),
    "pnl_normal": (_normal(0.0), False),
    "pnl_fat_tailed": (_fat_tailed(0.0), False),
}


@pytest.mark.parametrize("case", sorted(NULLS))
def test_peeking_after_every_batch_keeps_false_positives_below_alpha(case: str) -> None:
    draw, binary = NULLS[case]
    first, naive = _simulate(draw, draw, binary=binary, seed=11)
    false_positive = float(np.mean(first != 0))
    assert false_positive <= ALPHA
    # The same peeking with a fixed-n t-test is far above alpha, although each single look is
    # calibrated: this is the error the confidence sequence exists to prevent.
    assert abs(float(np.mean(naive[:, -1])) - ALPHA) < 0.025
    assert float(np.mean(naive.any(axis=1))) > 3 * ALPHA


@pytest.mark.parametrize("binary", [True, False], ids=["hit_rate", "pnl_fat_tailed"])
def test_unbalanced_canary_keeps_false_positives_below_alpha(binary: bool) -> None:
    draw = _binary(0.53) if binary else _fat_tailed(0.0)
    # a 20% canary: the challenger reaches 500 while the champion reaches 2,000
    first, _ = _simulate(draw, draw, binary=binary, seed=12, challenger_share=0.2, per_arm=500)
    assert float(np.mean(first != 0)) <= ALPHA


@pytest.mark.parametrize(
    ("champion", "challenger", "binary", "expected"),
    [
        (_binary(0.50), _binary(0.57), True, 1),
        (_binary(0.50), _binary(0.43), True, -1),
        (_normal(0.0), _normal(0.15), False, 1),
        (_normal(0.0), _normal(-0.15), False, -1),
    ],
    ids=["hit_rate_better", "hit_rate_worse", "pnl_better", "pnl_worse"],
)
def test_real_effect_is_detected_in_the_right_direction(
    champion: Draw, challenger: Draw, binary: bool, expected: int
) -> None:
    first, _ = _simulate(champion, challenger, binary=binary, seed=13)
    assert float(np.mean(first == expected)) >= 0.9  # power
    assert not np.any(first == -expected)  # never the wrong call


def test_analyze_matches_the_vectorised_simulation_peek_by_peek() -> None:
    """The controller path (ArmStats.update + analyze per batch) makes the simulated decisions."""
    rng = np.random.default_rng(5)
    for effect in (0.0, 0.0, 0.2, -0.2, 0.1, -0.1):
        a, b = rng.normal(0, 1, 1000), rng.normal(effect, 1, 1000)
        ns = np.arange(BATCH, 1001, BATCH)
        iv = difference_interval(_moments(a[None], ns), _moments(b[None], ns), ALPHA, 4000)
        sa, sb = ArmStats(), ArmStats()
        for i, n in enumerate(ns):
            sa, sb = sa.update(a[n - BATCH : n]), sb.update(b[n - BATCH : n])
            v = analyze(sa, sb, SPEC, planned_samples=4000)
            if n < SPEC.min_samples:
                assert v.decision == "continue"
                continue
            lo, hi = iv.lower[0, i], iv.upper[0, i]
            expected = "promote" if lo > 0 else "rollback" if hi < 0 else "continue"
            assert v.decision == expected
            assert v.ci_lower == pytest.approx(lo) and v.ci_upper == pytest.approx(hi)


# ----------------------------------------------------------------------------- the formulas


def test_halfwidth_matches_a_hand_computation() -> None:
    # alpha=0.05, n*=n=1000, s=1: -2 ln 0.05 = 5.991465; rho² = (5.991465 + ln 6.991465)/1000
    # = 0.0079362; n rho² + 1 = 8.93615; halfwidth = sqrt(2·8.93615·ln(sqrt(8.93615)/0.05)
    # / (1000² · 0.0079362)) = sqrt(73.1118 / 7936.15) = 0.095982.
    assert sequential_rho(0.05, 1000) == pytest.approx(math.sqrt(0.0079362), rel=1e-5)
    assert float(sequential_halfwidth(1.0, 1000, 0.05, 1000)) == pytest.approx(0.095982, rel=1e-4)
    # linear in the standard deviation, and wider than the fixed-n interval (the price of peeking)
    assert float(sequential_halfwidth(4.0, 1000, 0.05, 1000)) == pytest.approx(2 * 0.095982, 1e-4)
    assert float(sequential_halfwidth(1.0, 1000, 0.05, 1000)) > 1.96 / math.sqrt(1000)


def test_two_arm_interval_uses_combined_n_and_standard_error() -> None:
    a = ArmStats.from_values([1.0, 2.0, 3.0, 4.0])
    b = ArmStats.from_values([2.0, 4.0, 6.0])
    iv = difference_interval(a, b, 0.1, 50)
    se2 = np.var([1, 2, 3, 4], ddof=1) / 4 + np.var([2, 4, 6], ddof=1) / 3
    assert float(iv.difference) == pytest.approx(4.0 - 2.5)
    assert float(iv.halfwidth) == pytest.approx(float(sequential_halfwidth(se2 * 7, 7, 0.1, 50)))


def test_anytime_p_value_is_below_alpha_exactly_when_the_interval_excludes_zero() -> None:
    rng = np.random.default_rng(2)
    diff, s2, n = rng.normal(0, 0.1, 5000), rng.uniform(0.5, 2, 5000), rng.integers(50, 9000, 5000)
    half = sequential_halfwidth(s2, n, ALPHA, 3000)
    p = anytime_p_value(diff, s2, n, ALPHA, 3000)
    margin = np.abs(np.abs(diff) - half) > 1e-9  # skip exact ties
    assert np.array_equal((p < ALPHA)[margin], (np.abs(diff) > half)[margin])
    assert np.all((p >= 0) & (p <= 1))
    assert float(anytime_p_value(1e6, 1.0, 10_000, ALPHA)) == 0.0  # no overflow


# ---------------------------------------------------------------------- sample-ratio mismatch


def test_srm_flags_a_55_45_split_of_a_50_50_experiment() -> None:
    result = srm_check((5500, 4500), (0.5, 0.5))
    assert result.mismatch and result.p_value is not None and result.p_value < 1e-20
    assert not srm_check((5000, 5000), (50, 50)).mismatch
    assert not srm_check((9000, 1000), (90, 10)).mismatch
    assert srm_check((5000, 5000), (90, 10)).mismatch


def test_srm_false_alarm_rate_on_fair_splits_is_about_its_threshold() -> None:
    rng = np.random.default_rng(4)
    challenger = rng.binomial(10_000, 0.5, 2000)
    flagged = [srm_check((10_000 - int(c), int(c)), (1, 1)).mismatch for c in challenger]
    assert np.mean(flagged) <= 0.004  # threshold 0.001: about 2 of 2,000 expected


def test_srm_waits_for_enough_counts_but_catches_traffic_to_a_zero_weight_arm() -> None:
    assert srm_check((3, 0), (0.5, 0.5)).p_value is None
    assert srm_check((0, 0), (0.5, 0.5)).mismatch is False
    assert srm_check((10, 1), (1.0, 0.0)).mismatch
    with pytest.raises(BadInput):
        srm_check((10, 10), (1.0, -1.0))
    with pytest.raises(BadInput):
        srm_check((10, 10, 10), (1.0, 1.0))


# ------------------------------------------------------------------------------ the verdict


def test_srm_runs_on_requests_and_on_units_and_either_blocks_a_decision() -> None:
    rng = np.random.default_rng(7)
    champ, chal = rng.normal(0.0, 1.0, 3000), rng.normal(1.0, 1.0, 1000)  # a clear winner
    fair = analyze(champ, chal, SPEC, intended_weights=(75, 25), srm_units=(300, 100))
    assert fair.decision == "promote"
    assert fair.srm_requests_p_value is not None and fair.srm_requests_p_value > 0.001
    assert fair.srm_units_p_value is not None and fair.srm_units_p_value > 0.001
    assert fair.srm_p_value == min(fair.srm_requests_p_value, fair.srm_units_p_value)

    # units fine, but the challenger's requests are a third short: requests flag it
    short = analyze(champ, chal[:600], SPEC, intended_weights=(75, 25), srm_units=(300, 100))
    assert short.decision == "inconclusive"
    assert "mismatch on requests" in short.reason and "3000/600" in short.reason
    assert short.requests == (3000, 600) and fair.requests == (3000, 1000)
    assert short.srm_units_p_value is not None and short.srm_units_p_value > 0.001

    # requests fine, but the challenger holds far too many units: units flag it
    units = analyze(champ, chal, SPEC, intended_weights=(75, 25), srm_units=(200, 200))
    assert units.decision == "inconclusive" and "mismatch on units" in units.reason

    # per-bar aggregates are not request counts: the caller passes the requests it scored
    agg = analyze(
        ArmStats.from_values(champ[:300]),
        ArmStats.from_values(chal[:100]),
        SPEC,
        intended_weights=(75, 25),
        srm_requests=(3000, 600),
    )
    assert agg.decision == "inconclusive" and "3000/600" in agg.reason


def test_no_data_continues_and_never_decides() -> None:
    v = analyze([], [], SPEC)
    assert v.decision == "continue"
    assert v.n_champion == v.n_challenger == 0 and v.difference is None and v.ci_lower is None
    assert analyze([], [], SPEC, final=True).decision == "inconclusive"


def test_a_huge_effect_below_the_minimum_sample_still_continues() -> None:
    v = analyze([0.0, 0.1] * 40, [5.0, 5.1] * 40, SPEC)
    assert v.decision == "continue" and "too few samples" in v.reason
    assert v.ci_lower is not None and v.ci_lower > 0  # the numbers are shown, not acted on


def test_srm_makes_the_verdict_inconclusive_even_with_a_clear_winner() -> None:
    rng = np.random.default_rng(6)
    v = analyze(rng.normal(0, 1, 5500), rng.normal(1, 1, 4500), SPEC)
    assert v.decision == "inconclusive" and "sample ratio mismatch" in v.reason
    assert v.srm_p_value is not None and v.srm_p_value < 0.001
    ok = analyze(rng.normal(0, 1, 9000), rng.normal(1, 1, 1000), SPEC, intended_weights=(90, 10))
    assert ok.decision == "promote"


def test_promote_rollback_and_the_direction_of_better() -> None:
    rng = np.random.default_rng(7)
    champion, better = rng.normal(0, 1, 2000), rng.normal(0.5, 1, 2000)
    up = analyze(champion, better, SPEC)
    assert up.decision == "promote" and up.ci_lower is not None and up.ci_lower > 0
    assert up.difference == pytest.approx(better.mean() - champion.mean())
    assert up.p_value is not None and up.p_value < ALPHA
    assert analyze(better, champion, SPEC).decision == "rollback"
    # for a cost (lower is better) the same numbers mean the opposite
    down = analyze(champion, better, SPEC, higher_is_better=False)
    assert down.decision == "rollback" and down.difference == up.difference


def test_hit_rate_uses_the_spec_metric_and_binary_values() -> None:
    rng = np.random.default_rng(8)
    spec = AnalysisSpec(metric="hit_rate", min_samples=100)
    v = analyze(rng.binomial(1, 0.45, 3000), rng.binomial(1, 0.55, 3000), spec)
    assert v.metric == "hit_rate" and v.decision == "promote"
    # all hits versus all misses still gets a finite, non-zero-width interval
    extreme = analyze(np.zeros(200), np.ones(200), spec)
    assert extreme.decision == "promote" and extreme.ci_lower is not None
    assert extreme.ci_lower < 1.0
    with pytest.raises(BadInput, match="0 or 1"):
        analyze([0.0, 0.5, 1.0], [1.0, 0.0], spec)


def test_budget_exhausted_with_zero_in_the_interval_is_inconclusive() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(0, 1, 500), rng.normal(0, 1, 500)
    assert analyze(a, b, SPEC).decision == "continue"
    assert analyze(a, b, SPEC, final=True).decision == "inconclusive"
    by_size = analyze(a, b, SPEC, max_samples=500)
    assert by_size.decision == "inconclusive" and by_size.final
    assert by_size.planned_samples == 1000
    assert analyze(a, b, SPEC, max_samples=600).decision == "continue"


def test_non_inferiority_promotes_a_challenger_that_is_not_worse_than_the_margin() -> None:
    rng = np.random.default_rng(10)
    champion, slightly_worse = rng.normal(0, 1, 20_000), rng.normal(-0.05, 1, 20_000)
    assert analyze(champion, slightly_worse, SPEC).decision == "rollback"
    assert analyze(champion, slightly_worse, SPEC, margin=0.15).decision == "promote"
    much_worse = rng.normal(-0.5, 1, 20_000)
    assert analyze(champion, much_worse, SPEC, margin=0.15).decision == "rollback"


def test_constant_metric_has_nothing_to_compare() -> None:
    v = analyze(np.ones(200), np.ones(200), SPEC)
    assert v.decision == "continue" and "no variance" in v.reason


def test_verdict_is_frozen_and_json_serialisable() -> None:
    rng = np.random.default_rng(1)
    v = analyze(rng.normal(0, 1, 300), rng.normal(0, 1, 300), SPEC)
    d = json.loads(json.dumps(v.to_dict(), allow_nan=False))
    assert d["decision"] == v.decision and d["n_champion"] == 300 and d["alpha"] == ALPHA
    assert set(d) >= {"ci_lower", "ci_upper", "mean_champion", "srm_p_value", "reason"}
    with pytest.raises(FrozenInstanceError):
        v.decision = "promote"  # type: ignore[misc]
    assert isinstance(v, Verdict)


def test_bad_arguments_are_bad_input() -> None:
    with pytest.raises(BadInput):
        analyze([1.0], [1.0], SPEC, intended_weights=(1.0, 0.0))
    with pytest.raises(BadInput):
        analyze([1.0], [1.0], SPEC, margin=-1.0)
    with pytest.raises(BadInput):
        analyze([1.0], [1.0], SPEC, max_samples=10)
    with pytest.raises(BadInput, match="challenger"):
        analyze([1.0], [float("nan")], SPEC)
    with pytest.raises(BadInput):
        analyze([1.0], ["x"], SPEC)


# -------------------------------------------------------------------------------- ArmStats


def test_arm_stats_incremental_updates_match_all_the_samples() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0.001, 0.02, 1000)
    whole = ArmStats.from_values(x)
    stepwise = ArmStats()
    for chunk in np.array_split(x, 7):
        stepwise = stepwise.update(chunk)
    merged = ArmStats.from_values(x[:400]).merge(ArmStats.from_values(x[400:]))
    for s in (stepwise, merged):
        assert s.n == whole.n == 1000
        assert s.sum == pytest.approx(whole.sum) and s.sum_sq == pytest.approx(whole.sum_sq)
    assert whole.mean == pytest.approx(x.mean())
    assert whole.variance == pytest.approx(x.var(ddof=1))
    assert ArmStats().mean is None and ArmStats.from_values([1.0]).variance is None


def test_arm_stats_round_trip_through_json_and_refuse_corruption() -> None:
    s = ArmStats.from_values([0.5, -0.25, 1.0])
    assert ArmStats.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    with pytest.raises(BadInput):
        ArmStats.from_dict({"n": 3, "sum": 1.0})
    with pytest.raises(BadInput):
        ArmStats(n=3, sum=3.0, sum_sq=1.0)  # swapped or corrupted: n·sum_sq < sum²
    with pytest.raises(BadInput):
        ArmStats(n=-1)
    with pytest.raises(BadInput):
        ArmStats(n=0, sum=1.0, sum_sq=1.0)
    with pytest.raises(BadInput):
        ArmStats.from_dict({"n": "3", "sum": 1.0, "sum_sq": 1.0})
    with pytest.raises(BadInput):
        ArmStats(n=True)
