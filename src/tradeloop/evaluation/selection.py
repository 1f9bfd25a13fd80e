"""Selection-aware statistics: is a backtest's Sharpe still there after all the trying?

A Sharpe ratio picked as the best of N configurations is biased upwards; these correct for it.

- `probabilistic_sharpe` (PSR, Bailey & López de Prado 2012): the probability that the true
  Sharpe exceeds a benchmark SR*, given the estimate's length, skewness and kurtosis:

      PSR(SR*) = Φ( (SR̂ − SR*) · √(T − 1) / √(1 − γ3·SR̂ + (γ4 − 1)/4 · SR̂²) )

- `deflated_sharpe` (DSR, Bailey & López de Prado 2014): PSR against the Sharpe the best of N
  unskilled trials would show by luck, with γ ≈ 0.5772 (Euler–Mascheroni):

      SR0 = √V[SR_n] · ((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e)))

- `pbo` (Bailey, Borwein, López de Prado & Zhu 2017): the probability of backtest overfitting
  by combinatorially symmetric cross-validation (CSCV) over a T x N matrix of the trials'
  per-period returns; the share of in-sample/out-of-sample splits in which the in-sample best
  trial ranks at or below the out-of-sample median (logit λ ≤ 0).

Conventions: every Sharpe here is per period (not annualized), mean / std with ddof=1 as
`evaluation.metrics.sharpe`. γ3 is the skewness and **γ4 the Pearson kurtosis, not the excess
kurtosis**: a normal distribution has γ4 = 3, and then (γ4 − 1)/4 = 1/2. Both are the
population (biased, 1/T) moments the papers use, i.e. `scipy.stats.kurtosis(r, fisher=False,
bias=True)`. Passing excess kurtosis (normal = 0) is the common mistake; it understates the
variance of SR̂ and inflates PSR.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import norm

from tradeloop.errors import BadInput

EULER_GAMMA = 0.5772156649015329
Metric = Literal["sharpe", "mean"]


@dataclass(frozen=True)
class Moments:
    """What PSR needs from a return series: per-period Sharpe, length, skew, Pearson kurtosis."""

    sharpe: float
    n: int
    skew: float
    kurtosis: float  # Pearson: normal = 3


def moments(returns: np.ndarray) -> Moments:
    """Per-period Sharpe (ddof=1), T, skewness and Pearson kurtosis (population moments)."""
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if r.size < 3:
        raise BadInput(f"a Sharpe ratio's moments need at least 3 returns, got {r.size}")
    if not np.isfinite(r).all():
        raise BadInput("returns hold NaN or inf")
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    if not m2 > 0:
        raise BadInput("returns do not vary: the Sharpe ratio is undefined")
    skew = float(np.mean(d**3)) / m2**1.5
    kurt = float(np.mean(d**4)) / m2**2
    return Moments(float(r.mean() / r.std(ddof=1)), int(r.size), skew, kurt)


def probabilistic_sharpe(
    sharpe: float, n: int, skew: float, kurtosis: float, benchmark: float = 0.0
) -> float:
    """PSR: P(true Sharpe > `benchmark`); every Sharpe per period, `kurtosis` Pearson (normal 3)."""
    if n < 2:
        raise BadInput(f"PSR needs at least 2 observations, got {n}")
    if kurtosis < 1:
        raise BadInput(
            f"kurtosis {kurtosis} is below 1, impossible for Pearson kurtosis: was excess "
            "kurtosis (normal = 0) passed? PSR takes Pearson kurtosis (normal = 3)"
        )
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not var > 0:
        raise BadInput(f"the Sharpe estimate's variance term is {var:.4g}, not positive")
    z = (sharpe - benchmark) * math.sqrt(n - 1) / math.sqrt(var)
    return float(norm.cdf(z))


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """SR0: the expected maximum per-period Sharpe of `n_trials` unskilled trials whose
    Sharpe estimates have cross-trial variance `variance` (0 for a single trial)."""
    if n_trials < 1:
        raise BadInput(f"the trial count must be >= 1, got {n_trials}")
    if variance < 0:
        raise BadInput(f"the trials' Sharpe variance must be >= 0, got {variance}")
    if n_trials == 1:
        return 0.0  # nothing was selected: the benchmark is no skill
    g = EULER_GAMMA
    q = (1 - g) * norm.ppf(1 - 1 / n_trials) + g * norm.ppf(1 - 1 / (n_trials * math.e))
    return float(math.sqrt(variance) * q)


@dataclass(frozen=True)
class DeflatedSharpe:
    value: float  # DSR: P(true Sharpe > SR0)
    psr: float  # PSR against 0, for comparison
    sharpe: float  # per period
    benchmark: float  # SR0, per period
    n_trials: int
    variance: float
    variance_source: str
    moments: Moments

    def to_dict(self) -> dict[str, object]:
        return {
            "deflated_sharpe": self.value,
            "psr": self.psr,
            "sharpe_per_period": self.sharpe,
            "expected_max_sharpe": self.benchmark,
            "n_trials": self.n_trials,
            "trial_sharpe_variance": self.variance,
            "variance_source": self.variance_source,
            "n_returns": self.moments.n,
            "skew": self.moments.skew,
            "kurtosis_pearson": self.moments.kurtosis,
        }


def deflated_sharpe(
    returns: np.ndarray, n_trials: int, trial_sharpes: Sequence[float] = ()
) -> DeflatedSharpe:
    """DSR of the selected strategy's per-period `returns` after `n_trials` attempts.

    V[SR_n] is the sample variance (ddof=1) of `trial_sharpes` (per period) when at least two
    are given; otherwise the variance of one Sharpe estimate under the null (SR = 0, any
    skew and kurtosis), 1 / (T − 1), which is what independent unskilled trials would show.
    """
    m = moments(returns)
    finite = [float(s) for s in trial_sharpes if math.isfinite(s)]
    if len(finite) >= 2:
        variance, source = float(np.var(finite, ddof=1)), f"{len(finite)} trials' Sharpe ratios"
    else:
        variance, source = 1.0 / (m.n - 1), "null variance 1/(T-1): fewer than 2 trial Sharpes"
    sr0 = expected_max_sharpe(n_trials, variance)
    dsr = probabilistic_sharpe(m.sharpe, m.n, m.skew, m.kurtosis, sr0)
    psr = probabilistic_sharpe(m.sharpe, m.n, m.skew, m.kurtosis, 0.0)
    return DeflatedSharpe(dsr, psr, m.sharpe, sr0, n_trials, variance, source, m)


# ------------------------------------------------------------------------------------- PBO


@dataclass(frozen=True)
class PBOResult:
    pbo: float  # share of splits with logit <= 0
    n_splits: int  # C(S, S/2)
    n_blocks: int  # S
    n_trials: int  # N
    n_periods: int  # T actually used (a multiple of S)
    logits: np.ndarray  # one λ per split

    def to_dict(self) -> dict[str, object]:
        return {
            "pbo": self.pbo,
            "n_splits": self.n_splits,
            "n_blocks": self.n_blocks,
            "n_trials": self.n_trials,
            "n_periods": self.n_periods,
            "logit_median": float(np.median(self.logits)),
        }


def _performance(total: np.ndarray, sq: np.ndarray, count: float, metric: Metric) -> np.ndarray:
    mean = total / count
    if metric == "mean":
        return mean
    var = (sq - count * mean**2) / (count - 1)
    std = np.sqrt(np.maximum(var, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(std > 0, mean / std, 0.0)
    return np.asarray(out)


def pbo(returns: np.ndarray, n_blocks: int = 16, metric: Metric = "sharpe") -> PBOResult:
    """PBO by CSCV over `returns`, a T x N matrix (rows: periods in time order; columns: trials).

    The first T − T mod S rows are cut into S equal contiguous blocks. For each of the C(S, S/2)
    ways to choose S/2 blocks as in-sample (J, the rest J̄): n* = the trial best on J by `metric`;
    its relative rank out of sample ω = rank(n* on J̄) / (N + 1), ranks 1..N ascending, ties
    averaged; λ = ln(ω / (1 − ω)). PBO = share of splits with λ ≤ 0.
    """
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2:
        raise BadInput(f"PBO needs a periods x trials matrix, got shape {m.shape}")
    t, n = m.shape
    if n < 2:
        raise BadInput(f"PBO needs at least 2 trials to choose between, got {n}")
    if n_blocks < 2 or n_blocks % 2:
        raise BadInput(f"CSCV needs an even number of blocks >= 2, got {n_blocks}")
    if t < 2 * n_blocks:
        raise BadInput(f"CSCV with {n_blocks} blocks needs >= {2 * n_blocks} periods, got {t}")
    if not np.isfinite(m).all():
        raise BadInput("the trials' returns hold NaN or inf")
    size = t // n_blocks
    blocks = m[: size * n_blocks].reshape(n_blocks, size, n)
    b_sum, b_sq = blocks.sum(axis=1), (blocks**2).sum(axis=1)  # S x N
    combos = np.array(list(itertools.combinations(range(n_blocks), n_blocks // 2)))
    chosen = np.zeros((len(combos), n_blocks))
    np.put_along_axis(chosen, combos, 1.0, axis=1)
    half = size * (n_blocks // 2)
    is_perf = _performance(chosen @ b_sum, chosen @ b_sq, float(half), metric)
    rest = 1.0 - chosen
    oos_perf = _performance(rest @ b_sum, rest @ b_sq, float(half), metric)
    best = np.argmax(is_perf, axis=1)
    picked = oos_perf[np.arange(len(combos)), best][:, None]
    rank = (oos_perf < picked).sum(axis=1) + ((oos_perf == picked).sum(axis=1) + 1) / 2.0
    omega = rank / (n + 1)
    logits = np.log(omega / (1 - omega))
    return PBOResult(float(np.mean(logits <= 0)), len(combos), n_blocks, n, size * n_blocks, logits)


def blocks_for(n_periods: int, preferred: int = 16) -> int | None:
    """The largest even block count <= `preferred` leaving >= 2 periods per block, or None."""
    s = min(preferred, n_periods // 2)
    s -= s % 2
    return s if s >= 2 else None
