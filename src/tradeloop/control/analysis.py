"""Canary analysis: champion vs challenger on live predictions whose outcomes are now known.

Samples come from the gateway's prediction log since the phase started, graded against the bars
known at `now` (`monitoring.performance`): a prediction made at bar t for horizon h counts only
once bar t+h exists, so the analysis never scores a prediction on an outcome not yet known. The verdict comes from
the always-valid sequential test (peeking every loop is fine); SLOs come from the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tradeloop.control.rollout import Observation, RolloutState, intended_split
from tradeloop.monitoring.dependent import hac_stats, per_bar
from tradeloop.monitoring.experiment import ArmData, Verdict, analyze
from tradeloop.monitoring.outcomes import predictions_from_log, read_prediction_log
from tradeloop.monitoring.performance import PerformanceConfig, performance_samples
from tradeloop.spec import Spec


@dataclass(frozen=True)
class Samples:
    champion: np.ndarray
    challenger: np.ndarray
    champion_keys: int
    challenger_keys: int
    challenger_p99_ms: float | None
    champion_bars: np.ndarray | None = None  # each value's bar, for per-bar aggregation
    challenger_bars: np.ndarray | None = None


def gather(
    spec: Spec,
    predictions_root: Path,
    bars: pl.DataFrame,
    since: datetime,
    now: datetime,
    champion: str,
    challenger: str,
) -> Samples:
    """Per-prediction outcomes of both arms since `since`, graded only where known at `now`."""
    log = read_prediction_log(
        predictions_root, model=spec.name, since=since, versions=[champion, challenger]
    )
    empty = np.array([], dtype=np.float64)
    if log.height == 0:
        return Samples(empty, empty, 0, 0, None)
    preds = predictions_from_log(log, bars)
    arms = performance_samples(
        preds,
        bars,
        as_of=now,
        config=PerformanceConfig.from_spec(spec),
        since=since,
        versions={"champion": champion, "challenger": challenger},
    )
    metric = spec.deployment.analysis.metric
    ch, cl = arms.get("champion"), arms.get("challenger")
    lat = log.filter(pl.col("model_version") == challenger)
    p99 = None
    if "latency_ms" in lat.columns and lat.height >= 20:
        p99 = float(np.percentile(lat["latency_ms"].drop_nulls().to_numpy(), 99))
    return Samples(
        ch.values(metric) if ch else empty,
        cl.values(metric) if cl else empty,
        ch.keys if ch else 0,
        cl.keys if cl else 0,
        p99,
        ch.pnl_bars if ch and metric == "pnl" else None,
        cl.pnl_bars if cl and metric == "pnl" else None,
    )


def _arm(values: np.ndarray, bars: np.ndarray | None, dependence: str) -> ArmData:
    """One arm as the test sees it: raw draws, or per-bar means with a HAC variance."""
    if dependence != "per_bar_hac" or bars is None or bars.size != values.size:
        return values
    return hac_stats(per_bar(list(bars), values))


def observe(
    spec: Spec, state: RolloutState, samples: Samples, now: datetime, approval: Any
) -> tuple[Observation, Verdict | None]:
    a = spec.deployment.analysis
    verdict = None
    decision = None
    reason = "no samples yet"
    n = int(min(samples.champion.size, samples.challenger.size))
    if samples.champion.size >= 2 and samples.challenger.size >= 2:
        # a split by weight (a canary step) is checked for sample-ratio mismatch by key
        split = intended_split(state, spec.deployment)
        units = None
        if split is not None:
            units = (samples.champion_keys, samples.challenger_keys)
        verdict = analyze(
            _arm(samples.champion, samples.champion_bars, a.dependence),
            _arm(samples.challenger, samples.challenger_bars, a.dependence),
            a,
            intended_weights=split or (50.0, 50.0),
            srm_units=units,
            srm_requests=(int(samples.champion.size), int(samples.challenger.size)),
            planned_samples=a.planned_samples,
        )
        decision, reason = verdict.decision, verdict.reason
    slo_ok, slo_reason = True, ""
    if (
        a.max_latency_p99_ms is not None
        and samples.challenger_p99_ms is not None
        and samples.challenger_p99_ms > a.max_latency_p99_ms
    ):
        slo_ok = False
        slo_reason = (
            f"challenger p99 latency {samples.challenger_p99_ms:.1f} ms > {a.max_latency_p99_ms} ms"
        )
    return Observation(now, approval, decision, reason, slo_ok, slo_reason, n), verdict
