"""Canary analysis: champion vs challenger on live predictions whose outcomes are now known.

Samples come from the gateway's prediction log since the phase started, graded against the bars
known at `now` (`monitoring.performance`): a prediction made at bar t for horizon h counts only
once bar t+h exists, so the analysis never scores a prediction on an outcome not yet known. The verdict comes from
the always-valid sequential test (peeking every loop is fine). The challenger's p99 latency
comes from the same rows; its error rate from the gateway's request counter since the phase
started (errors never reach the prediction log), when a gateway runs in this process.

`deployment.analysis` (`max_latency_p99_ms`, `max_error_rate`) governs the canary: a breach
counts against `failure_limit` and then rolls it back. `monitoring.slos` governs alerts only,
fleet-wide and over its own window; its defaults (p99 5 ms) are an alerting target, not a
reason to undo a rollout.
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
from tradeloop.monitoring.slo import error_rates
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
    challenger_error_rate: float | None = None  # None: unknown (no counter, too few requests)


# fewer of the challenger's answers than this say nothing about its p99 or its error rate
MIN_SLO_REQUESTS = 20


def challenger_error_rate(requests: dict[str, tuple[float, float]] | None) -> float | None:
    """The challenger's share of 5xx answers in `requests` (variant -> (errors, total))."""
    if requests is None:
        return None
    return error_rates(requests, MIN_SLO_REQUESTS).get("challenger")


def gather(
    spec: Spec,
    predictions_root: Path,
    bars: pl.DataFrame,
    since: datetime,
    now: datetime,
    champion: str,
    challenger: str,
    requests: dict[str, tuple[float, float]] | None = None,
) -> Samples:
    """Per-prediction outcomes of both arms since `since`, graded only where known at `now`;
    `requests` are the gateway's (errors, total) per variant since `since`, if known."""
    errors = challenger_error_rate(requests)
    log = read_prediction_log(
        predictions_root, model=spec.name, since=since, versions=[champion, challenger]
    )
    empty = np.array([], dtype=np.float64)
    if log.height == 0:
        return Samples(empty, empty, 0, 0, None, challenger_error_rate=errors)
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
    if "latency_ms" in lat.columns and lat.height >= MIN_SLO_REQUESTS:
        p99 = float(np.percentile(lat["latency_ms"].drop_nulls().to_numpy(), 99))
    return Samples(
        ch.values(metric) if ch else empty,
        cl.values(metric) if cl else empty,
        ch.keys if ch else 0,
        cl.keys if cl else 0,
        p99,
        ch.pnl_bars if ch and metric == "pnl" else None,
        cl.pnl_bars if cl and metric == "pnl" else None,
        errors,
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
    breaches = slo_breaches(spec, samples)
    return Observation(
        now, approval, decision, reason, not breaches, "; ".join(breaches), n
    ), verdict


def slo_breaches(spec: Spec, samples: Samples) -> list[str]:
    """What the challenger breaches of `deployment.analysis`, each as the reason recorded."""
    a = spec.deployment.analysis
    out = []
    p99 = samples.challenger_p99_ms
    if a.max_latency_p99_ms is not None and p99 is not None and p99 > a.max_latency_p99_ms:
        out.append(f"challenger p99 latency {p99:.1f} ms > {a.max_latency_p99_ms:g} ms")
    rate = samples.challenger_error_rate
    if a.max_error_rate is not None and rate is not None and rate > a.max_error_rate:
        out.append(f"challenger error rate {rate:.1%} > {a.max_error_rate * 100:g}%")
    return out
