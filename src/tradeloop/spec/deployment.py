"""The `deployment` section: rollout strategy, shadow and canary steps, analysis, git, serving."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from tradeloop.spec.base import SpecModel
from tradeloop.spec.durations import Duration


class CanaryStep(SpecModel):
    weight: int = Field(ge=0, le=100)
    pause: Duration = timedelta(minutes=10)


class ShadowSpec(SpecModel):
    duration: Duration = timedelta(hours=1)
    min_samples: int = Field(100, ge=0)


class AnalysisSpec(SpecModel):
    metric: Literal["hit_rate", "pnl"] = "pnl"
    alpha: float = Field(0.05, gt=0, lt=1)
    min_samples: int = Field(100, ge=1)
    failure_limit: int = Field(1, ge=0)
    max_latency_p99_ms: float | None = Field(
        50.0,
        gt=0,
        description="the challenger's p99 over the phase; this, not monitoring.slos, governs "
        "the canary (a breach counts against failure_limit, then rolls it back)",
    )
    max_error_rate: float | None = Field(
        0.01,
        ge=0,
        le=1,
        description="the challenger's share of 5xx answers over the phase, from the gateway "
        "in the deployer's process (unknown, so never a reason, elsewhere)",
    )
    planned_samples: int | None = Field(
        None,
        ge=10,
        description="both arms' samples where the always-valid interval is "
        "tightest; fix it before the rollout (default 5000)",
    )
    dependence: Literal["independent", "per_bar_hac"] = Field(
        "per_bar_hac",
        description="per_bar_hac (default): pnl averaged per bar with an autocorrelation-robust "
        "variance (monitoring.dependent), since one symbol's consecutive bars are not "
        "independent draws; independent treats each prediction as one, which promotes "
        "falsely far above alpha on autocorrelated pnl (35% against 3.7% simulated)",
    )
    on_inconclusive: Literal["pause", "extend"] = "extend"
    max_extensions: int = Field(3, ge=0)


class GitSpec(SpecModel):
    branch: str = "main"
    mode: Literal["direct", "proposal"] = "direct"
    pin_file: str = "production.yaml"


class BatchingSpec(SpecModel):
    """Adaptive micro-batching of concurrent small requests (serving.batching; off when unset)."""

    max_batch: int = Field(64, ge=2, le=4096, description="rows per onnxruntime run, at most")
    max_delay: Duration = Field(
        timedelta(milliseconds=1),
        description="the longest a request waits for others to join its batch",
    )
    flush: Literal["idle", "deadline"] = Field(
        "idle",
        description="idle: run a batch as soon as no other prediction request is on its way "
        "(or when full, or at max_delay); deadline: only when full or at max_delay",
    )


class ServingSpec(SpecModel):
    require_token: bool = Field(False, description="prediction endpoints require a bearer token")
    sticky_key: str = Field("symbol", description="'symbol' or the name of a request header")
    units: list[str] | None = Field(
        None,
        description="the sticky units routed by rank (default: the simulator's symbols when "
        "sticky_key is symbol); others are hashed",
    )
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    fast_lane: bool = Field(
        True,
        description="answer small prediction requests from the HTTP parser in one write, "
        "skipping the ASGI cycle (off: every request through uvicorn's ASGI path)",
    )
    header_timeout: float = Field(
        10.0, gt=0, description="seconds a client has to send a request's headers (slowloris)"
    )
    idle_timeout: float = Field(5.0, gt=0, description="seconds a keep-alive connection may idle")
    max_connections: int = Field(
        2048, ge=1, description="open connections and requests beyond which the gateway says 503"
    )
    token_stale_limit: Duration = Field(
        timedelta(minutes=15),
        description="how long a verified token is honoured from cache while the store is down",
    )
    bars_role: Literal["predictor", "feeder"] = Field(
        "predictor", description="the role POST /v1/bars needs when tokens are required"
    )
    max_bars: int = Field(10_000, ge=1, description="bars per POST /v1/bars")
    max_symbols: int = Field(10_000, ge=1, description="symbols the trading endpoint tracks")
    symbols: list[str] | None = Field(
        None, description="the universe /v1/bars accepts (None: any symbol, up to max_symbols)"
    )
    future_tolerance: Duration = Field(
        timedelta(minutes=5), description="how far past the clock a bar's timestamp may be"
    )
    grpc_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="also serve the Open Inference Protocol over gRPC on this port "
        "(0: any free port; unset: no gRPC)",
    )
    access_log: Literal["full", "sampled", "off"] = Field(
        "off", description="one log line per request: all, a sample (errors always), or none"
    )
    access_log_sample: float = Field(0.01, gt=0, le=1, description="share logged when sampled")
    refuse_beyond: float | None = Field(
        None,
        gt=0,
        description="refuse (422) a row with a feature this many reference std devs outside "
        "the model's training range; unset: flag and count only",
    )
    batching: BatchingSpec | None = Field(
        None,
        description="coalesce concurrent small requests for one model version into one "
        "onnxruntime run (unset: every request runs alone)",
    )


class DeploymentSpec(SpecModel):
    strategy: Literal["canary", "blue_green", "direct"] = "canary"
    approval: Literal["auto", "manual"] = "auto"
    four_eyes: bool = Field(
        False,
        description="an approver may not approve a version they registered or triggered",
    )
    shadow: ShadowSpec | None = Field(default_factory=ShadowSpec)
    steps: list[CanaryStep] = Field(
        default_factory=lambda: [CanaryStep(weight=10), CanaryStep(weight=50)]
    )
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    git: GitSpec = Field(default_factory=GitSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
