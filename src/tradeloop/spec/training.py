"""The `training`, `backtest` and `gates` sections: how a model is fitted, scored and admitted."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from tradeloop.spec.base import SpecModel
from tradeloop.spec.durations import Duration

# A classifier's P(up) thresholds: the one place the defaults are written down.
DEFAULT_LONG_THRESHOLD = 0.52
DEFAULT_SHORT_THRESHOLD = 0.48


class TuningSpec(SpecModel):
    trials: int = Field(0, ge=0, description="0 disables the search")
    timeout: Duration = timedelta(minutes=2)
    metric: Literal["sharpe", "ic", "hit_rate"] = "sharpe"


class SplitSpec(SpecModel):
    scheme: Literal["expanding", "sliding"] = "expanding"
    folds: int = Field(4, ge=1)
    test_bars: int | None = Field(None, ge=10, description="bars per test fold (default: auto)")
    train_bars: int | None = Field(None, ge=10, description="sliding window length")
    min_train_bars: int = Field(500, ge=10)
    embargo: int = Field(
        0,
        ge=0,
        description="bars dropped after each test block when training follows it (purged "
        "k-fold); walk-forward folds never train after their test block, so none applies",
    )


class TrainingSpec(SpecModel):
    split: SplitSpec = Field(default_factory=SplitSpec)
    tuning: TuningSpec = Field(default_factory=TuningSpec)
    seed: int = 42
    # How the trainer runs training as a job (`control/jobs.py`), never in the gateway.
    job_timeout: Duration = Field(
        timedelta(hours=2), description="a training job still running after this is killed"
    )
    job_retries: int = Field(
        2, ge=0, le=20, description="failed attempts retried per trigger, after the first"
    )
    job_retry_backoff: Duration = Field(
        timedelta(seconds=30), description="wait before retry n: this × 2^(n-1)"
    )
    max_parallel_jobs: int = Field(
        2, ge=1, le=256, description="training jobs queued or running at once in this store"
    )

    @model_validator(mode="after")
    def _job_timeout(self) -> TrainingSpec:
        if self.job_timeout <= timedelta(0):
            raise ValueError("job_timeout must be positive (e.g. '2h')")
        if self.job_retry_backoff < timedelta(0):
            raise ValueError("job_retry_backoff must not be negative")
        return self


class BacktestSpec(SpecModel):
    cost_bps: float = Field(1.0, ge=0)
    slippage_bps: float = Field(1.0, ge=0)
    long_threshold: float = Field(
        DEFAULT_LONG_THRESHOLD, description="probability (or return) above which: long"
    )
    short_threshold: float = Field(
        DEFAULT_SHORT_THRESHOLD, description="probability (or return) below which: short"
    )
    allow_short: bool = True
    periods_per_year: float | None = Field(None, gt=0, description="default: from frequency")

    @model_validator(mode="after")
    def _thresholds(self) -> BacktestSpec:
        check_threshold_order(self.long_threshold, self.short_threshold)
        return self


def check_threshold_order(long_t: float, short_t: float) -> None:
    """Short below long: between them the position is flat. ValueError otherwise."""
    if short_t > long_t:
        raise ValueError("short_threshold must be <= long_threshold")


def check_thresholds(long_t: float, short_t: float, task: str) -> None:
    """The thresholds fit the model's prediction: probabilities for a classifier, returns
    around 0 for a regressor. ValueError otherwise. The one definition: the spec applies it at
    load time, and `evaluation.positions` again for rules built in code."""
    if task == "regression" and not short_t <= 0.0 <= long_t:
        raise ValueError(
            "backtest: for a regression model the thresholds are predicted returns centred on "
            "0 (e.g. long_threshold: 0.0005, short_threshold: -0.0005); got "
            f"long_threshold={long_t}, short_threshold={short_t}"
        )
    if task == "classification" and not (short_t >= 0.0 and long_t <= 1.0):
        raise ValueError(
            f"backtest thresholds {long_t}/{short_t} are not probabilities in [0, 1], "
            "which a classification model predicts"
        )


class ChampionGate(SpecModel):
    metric: Literal["sharpe", "total_return", "hit_rate", "ic", "sortino"] = "sharpe"
    margin: float = Field(0.0, description="challenger must beat champion by at least this")
    min_bars: int = Field(
        50, ge=1, description="bars after the champion's data both must be scored on"
    )


class GatesSpec(SpecModel):
    min_sharpe: float | None = 0.0
    max_drawdown: float | None = Field(0.5, gt=0, description="as a positive fraction")
    min_hit_rate: float | None = Field(None, ge=0, le=1)
    min_ic: float | None = None
    min_deflated_sharpe: float | None = Field(
        None, ge=0, le=1, description="deflated Sharpe ratio: P(true Sharpe > luck of N trials)"
    )
    max_pbo: float | None = Field(
        None, ge=0, le=1, description="probability of backtest overfitting (needs tuning)"
    )
    max_segment_drawdown: float | None = Field(
        None, gt=0, description="worst drawdown of any segment (symbol, regime, weekday, hour)"
    )
    champion: ChampionGate | None = Field(default_factory=ChampionGate)


def check_selection_gates(gates: GatesSpec, tuning: TuningSpec) -> None:
    """PBO compares tuning trials, so `gates.max_pbo` needs at least two. ValueError otherwise."""
    if gates.max_pbo is not None and tuning.trials < 2:
        raise ValueError(
            "gates.max_pbo needs training.tuning.trials >= 2: the probability of backtest "
            f"overfitting compares tuning trials, and {tuning.trials} trial(s) are configured"
        )
