"""PSR, DSR and PBO against values worked by hand from the papers' definitions.

Kurtosis is Pearson's throughout (a normal distribution has 3), as in both papers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import kurtosis, skew

from tradeloop.errors import BadInput
from tradeloop.evaluation.selection import (
    blocks_for,
    deflated_sharpe,
    expected_max_sharpe,
    moments,
    pbo,
    probabilistic_sharpe,
)


def phi(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def test_psr_by_hand() -> None:
    # SR^ = 0.1 per period, T = 101, skew -0.5, Pearson kurtosis 4 (excess 1), SR* = 0:
    # variance term 1 - (-0.5)(0.1) + (4 - 1)/4 * 0.1^2 = 1 + 0.05 + 0.0075 = 1.0575
    # z = (0.1 - 0) * sqrt(100) / sqrt(1.0575) = 1 / 1.028348... = 0.972433...
    z = 1.0 / math.sqrt(1.0575)
    assert z == pytest.approx(0.972433, abs=1e-6)
    assert probabilistic_sharpe(0.1, 101, -0.5, 4.0) == pytest.approx(phi(z), abs=1e-12)
    assert phi(z) == pytest.approx(0.83459, abs=1e-5)
    # normal returns (skew 0, kurtosis 3): variance term 1 + 0.5 * 0.01 = 1.005
    assert probabilistic_sharpe(0.1, 101, 0.0, 3.0) == pytest.approx(phi(1 / math.sqrt(1.005)))
    # against a benchmark equal to the estimate: exactly one half
    assert probabilistic_sharpe(0.1, 101, -0.5, 4.0, benchmark=0.1) == pytest.approx(0.5)


def test_dsr_reproduces_the_papers_numerical_example() -> None:
    # Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", numerical example: N = 100
    # trials, V[SR_n] = 1/2 annualized, T = 1250 daily returns (250 a year), best SR 2.5
    # annualized, skew -3, Pearson kurtosis 10. De-annualized: V = 0.5 / 250, SR^ = 2.5/sqrt(250).
    # SR0 = sqrt(0.002) * ((1 - 0.5772) * Phi^-1(0.99) + 0.5772 * Phi^-1(1 - 1/(100 e)))
    #     = 0.044721 * (0.42278 * 2.32635 + 0.57722 * 2.68040) = 0.044721 * 2.53073 = 0.11318
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=1e-4)  # the paper: 0.1132
    # DSR = Phi((0.158114 - 0.11318) sqrt(1249) / sqrt(1 + 3 * 0.158114 + 9/4 * 0.025))
    #     = Phi(0.044934 * 35.3412 / sqrt(1.530592)) = Phi(1.28354) = 0.9004
    sr = 2.5 / math.sqrt(250)
    dsr = probabilistic_sharpe(sr, 1250, -3.0, 10.0, benchmark=sr0)
    assert dsr == pytest.approx(0.9004, abs=2e-4)  # the paper: 0.9004


def test_a_single_trial_is_not_deflated() -> None:
    assert expected_max_sharpe(1, 0.3) == 0.0
    r = np.random.default_rng(1).normal(0.001, 0.01, 500)
    one = deflated_sharpe(r, 1)
    assert one.value == pytest.approx(one.psr)
    many = deflated_sharpe(r, 50)
    assert many.value < one.value  # more trials, a higher bar
    # with no trial Sharpes the null variance 1/(T - 1) is used
    assert many.variance == pytest.approx(1 / 499)


def test_moments_are_population_moments_with_pearson_kurtosis() -> None:
    r = np.random.default_rng(2).standard_t(5, 3000) * 0.01
    m = moments(r)
    assert m.skew == pytest.approx(skew(r, bias=True))
    assert m.kurtosis == pytest.approx(kurtosis(r, fisher=False, bias=True))
    assert m.sharpe == pytest.approx(r.mean() / r.std(ddof=1))
    normal = moments(np.random.default_rng(3).normal(size=200_000))
    assert normal.kurtosis == pytest.approx(3.0, abs=0.05)  # Pearson: normal is 3, not 0


def test_excess_kurtosis_is_refused_when_it_cannot_be_pearson() -> None:
    with pytest.raises(BadInput, match="excess kurtosis"):
        probabilistic_sharpe(0.1, 100, 0.0, 0.0)
    with pytest.raises(BadInput, match="at least 3"):
        moments(np.array([0.1, 0.2]))
    with pytest.raises(BadInput, match="do not vary"):
        moments(np.zeros(10))
    with pytest.raises(BadInput, match=">= 1"):
        expected_max_sharpe(0, 1.0)


def _blocks(*means: list[float]) -> np.ndarray:
    """Trials as columns, each block of 2 periods holding its mean twice."""
    return np.array([[v for v in col for _ in range(2)] for col in means]).T


def test_pbo_by_hand_a_lucky_block() -> None:
    # S = 4 blocks, C(4, 2) = 6 splits; performance = mean. A = [4, 0, 0, 0], B = [1, 1, 1, 1].
    # IS {0,1},{0,2},{0,3}: A 2 > B 1, pick A; OOS A 0 < B 1: rank 1 of 2, w = 1/3, logit < 0.
    # IS {1,2},{1,3},{2,3}: A 0 < B 1, pick B; OOS A 2 > B 1: rank 1, w = 1/3, logit < 0.
    res = pbo(_blocks([4, 0, 0, 0], [1, 1, 1, 1]), n_blocks=4, metric="mean")
    assert (res.n_splits, res.n_blocks, res.n_trials, res.n_periods) == (6, 4, 2, 8)
    assert res.pbo == 1.0
    assert res.logits == pytest.approx([math.log(0.5)] * 6)


def test_pbo_by_hand_one_split_in_three() -> None:
    # A = [3, 3, 0, 0], B = [1, 1, 1, 1].
    # IS {0,1}: A 3 > 1, pick A; OOS {2,3}: A 0 < 1, w = 1/3           -> logit ln(1/2) <= 0
    # IS {0,2},{0,3},{1,2},{1,3}: A 1.5 > 1, pick A; OOS A 1.5 > 1, w = 2/3 -> logit ln 2 > 0
    # IS {2,3}: A 0 < 1, pick B; OOS {0,1}: A 3 > B 1, w = 1/3        -> logit ln(1/2) <= 0
    # PBO = 2 / 6
    res = pbo(_blocks([3, 3, 0, 0], [1, 1, 1, 1]), n_blocks=4, metric="mean")
    assert res.pbo == pytest.approx(1 / 3)
    expected = [math.log(0.5)] + [math.log(2)] * 4 + [math.log(0.5)]
    assert res.logits == pytest.approx(expected)


def test_pbo_on_noise_is_near_a_half_and_on_skill_near_zero() -> None:
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 0.01, (1600, 12))
    assert 0.3 < pbo(noise).pbo < 0.7
    skill = noise.copy()
    skill[:, 3] += 0.004  # one trial with a real edge in every block
    assert pbo(skill).pbo < 0.05


def test_pbo_refuses_what_cscv_cannot_use() -> None:
    with pytest.raises(BadInput, match="at least 2 trials"):
        pbo(np.zeros((40, 1)))
    with pytest.raises(BadInput, match="even number"):
        pbo(np.zeros((40, 3)), n_blocks=5)
    with pytest.raises(BadInput, match="needs >= 32 periods"):
        pbo(np.zeros((20, 3)))
    with pytest.raises(BadInput, match="NaN"):
        pbo(np.full((40, 3), np.nan))
    assert blocks_for(100) == 16
    assert blocks_for(9) == 4
    assert blocks_for(3) is None
