"""Live model performance on delayed outcomes, per variant and model version.

Each evaluation grades the most recent `window` predictions whose outcome is known at `as_of`
(see `tradeloop.monitoring.outcomes`: a prediction waits, *pending*, until bar t+h exists), for
each (variant, model_version). Definitions follow the backtest that gated the model, so live
and offline figures are comparable:

- position: `tradeloop.evaluation.positions.PositionRule`, the backtest's rule (+1 above the
  long threshold, -1 below the short one if shorting is allowed, else 0; missing is flat).
- hit_rate: share of predictions *holding a position* whose position x forward return > 0
  (flat predictions are not bets). None when no prediction took a position.
- ic: Spearman correlation of prediction and forward return — cross-sectional per timestamp and
  averaged when >= 3 symbols, pooled otherwise (`evaluation.metrics.spearman_ic`).
- ece (classification only; the prediction is P(up)): expected calibration error over 10
  equal-width bins of P(up): sum over bins of (n_bin / n) * |mean P(up) - realized up-rate|,
  "up" meaning fwd_return > 0 as in the labels.
- paper PnL per prediction: position x fwd_return - cost_bps / 1e4 x |position - previous
  position|, the previous position being the same variant/version's last prediction for the
  symbol (flat before the first). Each prediction is one h-bar bet; with h > 1 the bets
  overlap, so this grades the signal rather than replaying a portfolio.
- sharpe: `evaluation.metrics.sharpe` of the per-timestamp mean PnL (an equal-weight book, as
  the backtest), with periods_per_year / horizon bets a year when periods_per_year is given
  (approximate for h > 1, where returns overlap), else per period. None with fewer than 2
  timestamps or no variation: no evidence is not a number.

`performance_samples` gives the per-prediction (pnl, hit) arrays `experiment.analyze` takes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import polars as pl

from tradeloop.errors import BadInput
from tradeloop.evaluation.metrics import periods_per_year, sharpe, spearman_ic
from tradeloop.evaluation.positions import (
    DEFAULT_LONG_THRESHOLD,
    DEFAULT_SHORT_THRESHOLD,
    PositionRule,
    Task,
)
from tradeloop.monitoring.outcomes import join_outcomes

__all__ = [
    "ArmSamples",
    "CalibrationBin",
    "PerformanceConfig",
    "PerformanceMetrics",
    "live_performance",
    "performance_samples",
    "scored",
]

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class PerformanceConfig:
    """Everything grading needs besides the data; `from_spec` reads it from tradeloop.yaml."""

    horizon: int = 1
    window: int = 500
    long_threshold: float = DEFAULT_LONG_THRESHOLD
    short_threshold: float = DEFAULT_SHORT_THRESHOLD
    task: Task = "classification"
    allow_short: bool = True
    cost_bps: float = 0.0
    periods_per_year: float | None = None
    known_after: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise BadInput(f"horizon must be >= 1, got {self.horizon}")
        if self.window < 1:
            raise BadInput(f"window must be >= 1, got {self.window}")
        _ = self.rule  # PositionRule refuses thresholds out of order: one definition
        if self.cost_bps < 0:
            raise BadInput(f"cost_bps must be >= 0, got {self.cost_bps}")

    @classmethod
    def from_spec(cls, spec: Any, *, known_after: timedelta = timedelta(0)) -> PerformanceConfig:
        """From a `tradeloop.spec.Spec`: label horizon, monitoring window, the backtest's
        thresholds, costs (cost + slippage) and annualization."""
        rule = PositionRule.for_task(spec.backtest, spec.model.task)
        bt = spec.backtest
        ppy = bt.periods_per_year or periods_per_year(spec.data.frequency, spec.data.calendar)
        return cls(
            horizon=spec.labels.horizon,
            window=spec.monitoring.performance.window,
            long_threshold=rule.long_threshold,
            short_threshold=rule.short_threshold,
            task=spec.model.task,
            allow_short=bt.allow_short,
            cost_bps=bt.cost_bps + bt.slippage_bps,
            periods_per_year=ppy,
            known_after=known_after,
        )

    @property
    def rule(self) -> PositionRule:
        return PositionRule(self.long_threshold, self.short_threshold, self.allow_short)


@dataclass(frozen=True)
class CalibrationBin:
    lower: float
    upper: float
    n: int
    mean_predicted: float
    realized_up_rate: float


@dataclass(frozen=True)
class PerformanceMetrics:
    """One (variant, model_version)'s grade over its latest `n` predictions with outcomes."""

    variant: str
    model_version: str
    n: int  # graded predictions in the window
    pending: int  # predictions made whose outcome is not known yet
    n_positions: int  # graded predictions that took a position
    hit_rate: float | None
    ic: float | None
    ece: float | None
    pnl_mean: float | None
    pnl_total: float
    sharpe: float | None
    window_start: datetime | None  # feature time of the oldest graded prediction
    window_end: datetime | None
    calibration: tuple[CalibrationBin, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("window_start", "window_end"):
            d[k] = d[k].isoformat() if d[k] is not None else None
        d["calibration"] = [asdict(b) for b in self.calibration]
        return d


@dataclass(frozen=True)
class ArmSamples:
    """Per-prediction outcomes of one variant, the input `experiment.analyze` takes.

    pnl: one value per graded prediction; hit: 0/1 per graded prediction that took a position;
    keys: distinct symbols graded (the sticky unit, for `analyze(srm_units=...)`).
    pnl_bars: each pnl value's bar (epoch microseconds), for per-bar aggregation.
    """

    pnl: np.ndarray
    hit: np.ndarray
    keys: int
    pending: int
    pnl_bars: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))

    def values(self, metric: Literal["pnl", "hit_rate"]) -> np.ndarray:
        return self.pnl if metric == "pnl" else self.hit


def scored(
    predictions: pl.DataFrame,
    bars: pl.DataFrame,
    *,
    as_of: datetime,
    config: PerformanceConfig,
) -> pl.DataFrame:
    """Predictions existing at `as_of` with outcome columns and, for graded rows, position,
    hit (null when flat) and pnl; sorted by (variant, model_version, timestamp, symbol)."""
    rows = join_outcomes(
        predictions, bars, horizon=config.horizon, as_of=as_of, known_after=config.known_after
    )
    group = ["variant", "model_version", "symbol"]
    pos = config.rule.expr(pl.col("prediction"))
    cost = config.cost_bps / 1e4
    rows = (
        rows.sort("variant", "model_version", "symbol", "timestamp")
        .with_columns(pos.alias("position"))
        .with_columns(
            (pl.col("position") - pl.col("position").shift(1).over(group).fill_null(0.0))
            .abs()
            .alias("turnover")
        )
        .with_columns(
            pl.when(pl.col("known"))
            .then(pl.col("position") * pl.col("fwd_return") - cost * pl.col("turnover"))
            .alias("pnl"),
            pl.when(pl.col("known") & (pl.col("position") != 0))
            .then((pl.col("position") * pl.col("fwd_return") > 0).cast(pl.Float64))
            .alias("hit"),
        )
    )
    return rows.sort("variant", "model_version", "timestamp", "symbol")


def _sharpe(ts: np.ndarray, pnl: np.ndarray, ppy: float | None, horizon: int) -> float | None:
    book = pl.DataFrame({"t": ts, "p": pnl}).group_by("t").agg(pl.col("p").mean())["p"]
    return sharpe(book.to_numpy(), ppy / horizon if ppy else None)


def _calibration(p: np.ndarray, up: np.ndarray) -> tuple[float | None, tuple[CalibrationBin, ...]]:
    if p.size == 0:
        return None, ()
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    idx = np.clip(
        np.digitize(np.clip(p, 0.0, 1.0), edges[1:-1], right=False), 0, CALIBRATION_BINS - 1
    )
    bins: list[CalibrationBin] = []
    ece = 0.0
    for b in range(CALIBRATION_BINS):
        m = idx == b
        n = int(m.sum())
        if n == 0:
            continue
        mp, ur = float(p[m].mean()), float(up[m].mean())
        ece += n / p.size * abs(mp - ur)
        bins.append(CalibrationBin(float(edges[b]), float(edges[b + 1]), n, mp, ur))
    return ece, tuple(bins)


def _grade(
    rows: pl.DataFrame, variant: str, version: str, pending: int, config: PerformanceConfig
) -> PerformanceMetrics:
    n = rows.height
    if n == 0:
        return PerformanceMetrics(
            variant, version, 0, pending, 0, None, None, None, None, 0.0, None, None, None
        )
    pred = rows["prediction"].to_numpy().astype(np.float64)
    fwd = rows["fwd_return"].to_numpy().astype(np.float64)
    pnl = rows["pnl"].to_numpy().astype(np.float64)
    hits = rows["hit"].drop_nulls().to_numpy()
    ts = rows["timestamp"].dt.epoch("us").to_numpy()
    ic = None
    ok = np.isfinite(pred)
    if ok.sum() >= 2:
        ic = spearman_ic(ts[ok], pred[ok], fwd[ok], n_symbols=rows["symbol"].n_unique())
    ece: float | None = None
    bins: tuple[CalibrationBin, ...] = ()
    if config.task == "classification":
        ece, bins = _calibration(pred[ok], (fwd[ok] > 0).astype(np.float64))
    return PerformanceMetrics(
        variant=variant,
        model_version=version,
        n=n,
        pending=pending,
        n_positions=int(hits.size),
        hit_rate=float(hits.mean()) if hits.size else None,
        ic=ic,
        ece=ece,
        pnl_mean=float(pnl.mean()),
        pnl_total=float(pnl.sum()),
        sharpe=_sharpe(ts, pnl, config.periods_per_year, config.horizon),
        window_start=rows["timestamp"].min(),  # type: ignore[arg-type]  # polars types min()/max() as any literal; a Datetime column gives datetime
        window_end=rows["timestamp"].max(),  # type: ignore[arg-type]  # polars types min()/max() as any literal; a Datetime column gives datetime
        calibration=bins,
    )


def live_performance(
    predictions: pl.DataFrame,
    bars: pl.DataFrame,
    *,
    as_of: datetime,
    config: PerformanceConfig,
) -> list[PerformanceMetrics]:
    """Metrics for each (variant, model_version) over its latest `config.window` graded
    predictions at `as_of`, sorted by variant then version. Versions with only pending
    predictions appear with n=0 and None metrics."""
    rows = scored(predictions, bars, as_of=as_of, config=config)
    out: list[PerformanceMetrics] = []
    if rows.height == 0:
        return out
    for (variant, version), g in rows.group_by(["variant", "model_version"], maintain_order=True):
        known = g.filter(pl.col("known"))
        out.append(
            _grade(
                known.tail(config.window),
                str(variant),
                str(version),
                g.height - known.height,
                config,
            )
        )
    return sorted(out, key=lambda m: (m.variant, m.model_version))


def performance_samples(
    predictions: pl.DataFrame,
    bars: pl.DataFrame,
    *,
    as_of: datetime,
    config: PerformanceConfig,
    since: datetime | None = None,
    versions: Mapping[str, str] | None = None,
    modes: Collection[str] | None = None,
) -> dict[str, ArmSamples]:
    """Per-variant samples of every prediction graded at `as_of` (no window: the sequential
    test wants them all), made on bars at or after `since` (a rollout phase's start).

    versions: variant -> model_version to keep (a canary compares exactly two versions);
    modes: e.g. {"live"} to leave shadow scoring out (needs a `mode` column).
    """
    rows = scored(predictions, bars, as_of=as_of, config=config)
    if since is not None:
        rows = rows.filter(pl.col("timestamp") >= since)
    if modes is not None and "mode" in rows.columns:
        rows = rows.filter(pl.col("mode").is_in(list(modes)))
    out: dict[str, ArmSamples] = {}
    variants = versions.keys() if versions is not None else rows["variant"].unique().sort()
    for variant in variants:
        g = rows.filter(pl.col("variant") == variant)
        if versions is not None:
            g = g.filter(pl.col("model_version") == versions[variant])
        known = g.filter(pl.col("known"))
        out[str(variant)] = ArmSamples(
            pnl=known["pnl"].to_numpy().astype(np.float64),
            hit=known["hit"].drop_nulls().to_numpy().astype(np.float64),
            keys=known["symbol"].n_unique(),
            pending=g.height - known.height,
            pnl_bars=known["timestamp"].dt.epoch("us").to_numpy(),
        )
    return out
