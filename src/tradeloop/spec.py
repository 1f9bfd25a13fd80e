"""The pipeline spec (`tradeloop.yaml`): pydantic models and located, helpful errors.

Unknown keys are errors everywhere (`extra="forbid"`), and every error names the YAML line and
the field path, with a suggestion for a misspelt key.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import types
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from tradeloop.errors import SpecError

SPEC_FILENAME = "tradeloop.yaml"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """'90s', '15m', '1h', '30d', '2w' (or a number of seconds) to a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])
    raise ValueError(f"not a duration: {value!r} (use e.g. '30s', '15m', '1h', '30d')")


def format_duration(td: timedelta) -> str:
    s = int(td.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if s and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------------------- data


class Regime(_Model):
    """A market regime starting at bar `at` (0-based); later regimes replace earlier ones."""

    at: int = Field(0, ge=0, description="bar index at which this regime starts")
    drift: float = Field(0.0, description="mean log-return per bar")
    volatility: float = Field(0.01, gt=0, description="per-bar standard deviation of returns")
    correlation: float = Field(0.3, ge=0, le=0.99, description="pairwise correlation of shocks")
    signal: float = Field(
        0.15, ge=-1, le=1, description="autocorrelation a model can learn (momentum if > 0)"
    )
    volume: float = Field(1_000_000.0, gt=0, description="mean volume per bar")


class SimulatorSpec(_Model):
    symbols: list[str] = Field(default_factory=lambda: ["AAA", "BBB", "CCC", "DDD"], min_length=1)
    start: datetime = datetime(2023, 1, 2, tzinfo=UTC)
    bars: int = Field(4000, ge=50)
    seed: int = 7
    start_price: float = Field(100.0, gt=0)
    regimes: list[Regime] = Field(default_factory=lambda: [Regime()], min_length=1)

    @model_validator(mode="after")
    def _regimes_ordered(self) -> SimulatorSpec:
        ats = [r.at for r in self.regimes]
        if ats != sorted(ats) or len(set(ats)) != len(ats):
            raise ValueError("regimes must have strictly increasing 'at'")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("symbols must be unique")
        return self


class ColumnMapping(_Model):
    """How a CSV/Parquet file's columns map onto bars.

    Columns are named as in the header row, or given by 0-based position when `header` is
    false (HistData, some broker exports have no header). The decimal mark is explicit because a
    European "1,10391" read with the wrong one is a silent 100000x error, not a parse failure.
    """

    header: bool = Field(True, description="the first row names the columns (CSV only)")
    delimiter: str | None = Field(
        None, description="one character or tab/comma/semicolon/pipe; None sniffs , ; TAB |"
    )
    decimal: Literal[".", ","] = Field(
        ".", description="decimal mark of text numbers; the other mark is the thousands separator"
    )
    timestamp: str | int | list[str | int] = Field(
        "timestamp", description="a column, or several (date, time) joined with a space"
    )
    format: str | None = Field(None, description="strptime format; None lets the reader infer")
    timezone: str = Field("UTC", description="zone of naive timestamps (e.g. America/New_York)")
    symbol: str | int | None = Field(None, description="column holding the symbol")
    symbol_value: str | None = Field(None, description="constant symbol when there is no column")
    symbol_from_file: str | None = Field(
        None, description="regex searched in each file's name; its first group is the symbol"
    )
    open: str | int = "open"
    high: str | int = "high"
    low: str | int = "low"
    close: str | int = "close"
    volume: str | int | None = "volume"
    adjusted_close: str | int | None = Field(
        None, description="adjusted close: open/high/low/close are scaled by it / close per row"
    )

    @model_validator(mode="before")
    @classmethod
    def _delimiter_name(cls, data: Any) -> Any:
        names = {"tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
        d = data.get("delimiter") if isinstance(data, dict) else None
        if isinstance(d, str) and d.lower() in names:
            return {**data, "delimiter": names[d.lower()]}
        return data

    def refs(self) -> dict[str, str | int]:
        """Every column the mapping reads, by role (a multi-column timestamp as timestamp[i])."""
        ts = self.timestamp if isinstance(self.timestamp, list) else [self.timestamp]
        out: dict[str, str | int] = {
            (f"timestamp[{i}]" if len(ts) > 1 else "timestamp"): r for i, r in enumerate(ts)
        }
        for role in ("symbol", "open", "high", "low", "close", "volume", "adjusted_close"):
            ref = getattr(self, role)
            if ref is not None:
                out[role] = ref
        return out

    @model_validator(mode="after")
    def _consistent(self) -> ColumnMapping:
        self._check_symbol_source()
        self._check_delimiter()
        self._check_refs()
        if self.timezone != "UTC":
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(
                    f"timezone {self.timezone!r} is not a known zone (e.g. America/New_York)"
                ) from exc
        return self

    def _check_symbol_source(self) -> None:
        given = [self.symbol is not None, self.symbol_value is not None, self.symbol_from_file]
        if sum(bool(g) for g in given) != 1:
            raise ValueError(
                "give exactly one of 'symbol' (a column), 'symbol_value' (a constant) or "
                "'symbol_from_file' (a regex on the file name)"
            )
        if self.symbol_from_file is not None:
            try:
                groups = re.compile(self.symbol_from_file).groups
            except re.error as exc:
                raise ValueError(f"symbol_from_file is not a valid regex: {exc}") from exc
            if groups < 1:
                raise ValueError("symbol_from_file needs a group, e.g. '^([A-Z]+)_'")

    def _check_delimiter(self) -> None:
        d = self.delimiter
        if d is None:
            return
        if len(d) != 1 or d.isalnum() or d in '"\n\r.' or len(d.encode()) != 1:
            raise ValueError(f"delimiter must be one ASCII punctuation character or tab, got {d!r}")
        if d == self.decimal:
            raise ValueError(f"delimiter and decimal are both {d!r}")

    def _check_refs(self) -> None:
        """Names with a header row, 0-based positions without one: never a mix."""
        if isinstance(self.timestamp, list) and not self.timestamp:
            raise ValueError("timestamp: give a column or a non-empty list of columns")
        refs = self.refs()
        negative = [f"{k} is {v}" for k, v in refs.items() if isinstance(v, int) and v < 0]
        if negative:
            raise ValueError(f"column positions are 0-based (>= 0), but {', '.join(negative)}")
        if self.header:
            pos = [f"{k} is position {v}" for k, v in refs.items() if isinstance(v, int)]
            if pos:
                raise ValueError(
                    f"header is true, so columns are named as in the header row, but "
                    f"{', '.join(pos)} (set header: false for a file without a header row, or "
                    "quote a column that is named by digits)"
                )
        else:
            named = [f"{k} is the name {v!r}" for k, v in refs.items() if isinstance(v, str)]
            if named:
                raise ValueError(
                    "header is false, so columns are 0-based positions (e.g. open: 1), but "
                    + ", ".join(named)
                )


class ValidationRules(_Model):
    outlier_sigma: float = Field(10.0, gt=0, description="|return| / robust sigma for a warning")
    max_gap_bars: int = Field(
        0, ge=0, description="gaps longer than this many bars are errors (0: gaps only warn)"
    )


class DataSpec(_Model):
    source: Literal["simulator", "csv", "parquet"] = "simulator"
    frequency: Duration = timedelta(hours=1)
    calendar: Literal["continuous", "weekdays"] = Field(
        "continuous",
        description="'weekdays' allows weekend gaps: Saturday and Sunday, and for intraday bars "
        "the FX weekend from Friday 17:00 New York",
    )
    simulator: SimulatorSpec = Field(default_factory=SimulatorSpec)
    path: str | None = Field(None, description="file or glob, relative to the spec")
    columns: ColumnMapping | None = None
    validation: ValidationRules = Field(default_factory=ValidationRules)

    @model_validator(mode="after")
    def _files_need_path(self) -> DataSpec:
        if self.source != "simulator" and (self.path is None or self.columns is None):
            raise ValueError(f"source '{self.source}' needs 'path' and 'columns'")
        if self.source == "parquet" and self.columns is not None and not self.columns.header:
            raise ValueError("columns.header: false is for CSV; Parquet columns always have names")
        return self


# ----------------------------------------------------------------------------------- features

FeatureKind = Literal[
    "returns",
    "log_returns",
    "volatility",
    "rsi",
    "macd",
    "zscore",
    "volume_zscore",
    "volume_ratio",
    "range",
    "cs_rank",
]


class FeatureSpec(_Model):
    """One feature. Windows count bars; every value at bar t uses bars <= t only."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    kind: FeatureKind
    window: int | None = Field(None, ge=1)
    fast: int | None = Field(None, ge=1)
    slow: int | None = Field(None, ge=2)
    signal: int | None = Field(None, ge=1)
    of: str | None = Field(None, description="for cs_rank: the feature ranked across symbols")

    @model_validator(mode="after")
    def _params(self) -> FeatureSpec:
        k = self.kind
        if k == "macd":
            if self.fast is None or self.slow is None or self.signal is None:
                raise ValueError("macd needs fast, slow and signal")
            if self.fast >= self.slow:
                raise ValueError("macd needs fast < slow")
        elif k == "cs_rank":
            if self.of is None:
                raise ValueError("cs_rank needs 'of' (the feature to rank)")
        elif k != "range" and self.window is None:
            raise ValueError(f"{k} needs 'window'")
        std_kind = k in ("volatility", "zscore", "volume_zscore")
        if std_kind and self.window is not None and self.window < 2:
            raise ValueError(f"{k} needs window >= 2 (a standard deviation of one value)")
        return self


def _default_features() -> list[FeatureSpec]:
    return [
        FeatureSpec(name="ret_1", kind="returns", window=1),
        FeatureSpec(name="ret_5", kind="returns", window=5),
        FeatureSpec(name="ret_20", kind="returns", window=20),
        FeatureSpec(name="vol_20", kind="volatility", window=20),
        FeatureSpec(name="rsi_14", kind="rsi", window=14),
        FeatureSpec(name="macd", kind="macd", fast=12, slow=26, signal=9),
        FeatureSpec(name="z_20", kind="zscore", window=20),
        FeatureSpec(name="vz_20", kind="volume_zscore", window=20),
        FeatureSpec(name="rank_ret_5", kind="cs_rank", of="ret_5"),
    ]


class LabelSpec(_Model):
    horizon: int = Field(1, ge=1, description="forward bars: label at t uses bars t+1..t+h")
    kind: Literal["sign", "return"] = "sign"


# -------------------------------------------------------------------------------------- model


class LightGBMModel(_Model):
    type: Literal["lightgbm"] = "lightgbm"
    task: Literal["classification", "regression"] = "classification"
    n_estimators: int = Field(200, ge=1)
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    max_depth: int = Field(-1, ge=-1)
    min_child_samples: int = Field(50, ge=1)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    reg_lambda: float = Field(1.0, ge=0)


class LinearModel(_Model):
    type: Literal["linear"]
    task: Literal["classification", "regression"] = "classification"
    alpha: float = Field(1.0, gt=0, description="L2 strength (1/C for classification)")


ModelSpec = Annotated[Union[LightGBMModel, LinearModel], Field(discriminator="type")]  # noqa: UP007


# ----------------------------------------------------------------------------------- training


class TuningSpec(_Model):
    trials: int = Field(0, ge=0, description="0 disables the search")
    timeout: Duration = timedelta(minutes=2)
    metric: Literal["sharpe", "ic", "hit_rate"] = "sharpe"


class SplitSpec(_Model):
    scheme: Literal["expanding", "sliding"] = "expanding"
    folds: int = Field(4, ge=1)
    test_bars: int | None = Field(None, ge=10, description="bars per test fold (default: auto)")
    train_bars: int | None = Field(None, ge=10, description="sliding window length")
    min_train_bars: int = Field(500, ge=10)
    embargo: int = Field(0, ge=0, description="bars dropped after each test fold")


class TrainingSpec(_Model):
    split: SplitSpec = Field(default_factory=SplitSpec)
    tuning: TuningSpec = Field(default_factory=TuningSpec)
    seed: int = 42


class BacktestSpec(_Model):
    cost_bps: float = Field(1.0, ge=0)
    slippage_bps: float = Field(1.0, ge=0)
    long_threshold: float = Field(0.52, description="probability (or return) above which: long")
    short_threshold: float = Field(0.48, description="probability (or return) below which: short")
    allow_short: bool = True
    periods_per_year: float | None = Field(None, gt=0, description="default: from frequency")

    @model_validator(mode="after")
    def _thresholds(self) -> BacktestSpec:
        if self.short_threshold > self.long_threshold:
            raise ValueError("short_threshold must be <= long_threshold")
        return self


class ChampionGate(_Model):
    metric: Literal["sharpe", "total_return", "hit_rate", "ic", "sortino"] = "sharpe"
    margin: float = Field(0.0, description="challenger must beat champion by at least this")
    min_bars: int = Field(
        50, ge=1, description="bars after the champion's data both must be scored on"
    )


class GatesSpec(_Model):
    min_sharpe: float | None = 0.0
    max_drawdown: float | None = Field(0.5, gt=0, description="as a positive fraction")
    min_hit_rate: float | None = Field(None, ge=0, le=1)
    min_ic: float | None = None
    champion: ChampionGate | None = Field(default_factory=ChampionGate)


# --------------------------------------------------------------------------------- deployment


class CanaryStep(_Model):
    weight: int = Field(ge=0, le=100)
    pause: Duration = timedelta(minutes=10)


class ShadowSpec(_Model):
    duration: Duration = timedelta(hours=1)
    min_samples: int = Field(100, ge=0)


class AnalysisSpec(_Model):
    metric: Literal["hit_rate", "pnl"] = "pnl"
    alpha: float = Field(0.05, gt=0, lt=1)
    min_samples: int = Field(100, ge=1)
    failure_limit: int = Field(1, ge=0)
    max_latency_p99_ms: float | None = Field(50.0, gt=0)
    max_error_rate: float | None = Field(0.01, ge=0, le=1)
    planned_samples: int | None = Field(
        None,
        ge=10,
        description="both arms' samples where the always-valid interval is "
        "tightest; fix it before the rollout (default 5000)",
    )
    on_inconclusive: Literal["pause", "extend"] = "extend"
    max_extensions: int = Field(3, ge=0)


class GitSpec(_Model):
    branch: str = "main"
    mode: Literal["direct", "proposal"] = "direct"
    pin_file: str = "production.yaml"


class ServingSpec(_Model):
    require_token: bool = Field(False, description="prediction endpoints require a bearer token")
    sticky_key: str = Field("symbol", description="'symbol' or the name of a request header")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)


class DeploymentSpec(_Model):
    strategy: Literal["canary", "blue_green", "direct"] = "canary"
    approval: Literal["auto", "manual"] = "auto"
    shadow: ShadowSpec | None = Field(default_factory=ShadowSpec)
    steps: list[CanaryStep] = Field(
        default_factory=lambda: [CanaryStep(weight=10), CanaryStep(weight=50)]
    )
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    git: GitSpec = Field(default_factory=GitSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)


# --------------------------------------------------------------------------------- monitoring

DriftMethod = Literal["auto", "ks", "psi", "wasserstein", "jensenshannon", "chisquare"]


class DriftSpec(_Model):
    method: DriftMethod = "auto"
    threshold: float | None = Field(None, gt=0, description="default: the method's own")
    share: float = Field(0.5, gt=0, le=1, description="share of drifted features = dataset drift")
    window: int = Field(500, ge=10, description="recent predictions compared with the reference")
    features: dict[str, DriftMethod] = Field(default_factory=dict, description="per-feature method")


AlertMetric = Literal[
    "drift_share",
    "feature_drift",
    "prediction_drift",
    "hit_rate",
    "sharpe",
    "ic",
    "latency_p99_ms",
    "error_rate",
    "log_dropped",
]


class AlertRule(_Model):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    metric: AlertMetric
    feature: str | None = Field(None, description="for feature_drift: which feature")
    op: Literal[">", ">=", "<", "<="] = ">"
    value: float
    for_: Duration = Field(timedelta(0), alias="for")
    severity: Literal["info", "warning", "critical"] = "warning"
    routes: list[str] = Field(default_factory=lambda: ["log"])


class WebhookRoute(_Model):
    url: str
    timeout: Duration = timedelta(seconds=2)
    retries: int = Field(2, ge=0, le=10)


class SLOSpec(_Model):
    latency_p99_ms: float = Field(5.0, gt=0)
    error_rate: float = Field(0.01, ge=0, le=1)


class PerformanceSpec(_Model):
    window: int = Field(500, ge=10, description="predictions with known outcomes per window")


class MonitoringSpec(_Model):
    drift: DriftSpec = Field(default_factory=DriftSpec)
    performance: PerformanceSpec = Field(default_factory=PerformanceSpec)
    slos: SLOSpec = Field(default_factory=SLOSpec)
    alerts: list[AlertRule] = Field(default_factory=list)
    webhooks: dict[str, WebhookRoute] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _routes_exist(self) -> MonitoringSpec:
        names = [a.name for a in self.alerts]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"duplicate alert names: {sorted(dupes)}")
        for a in self.alerts:
            for r in a.routes:
                if r != "log" and r not in self.webhooks:
                    raise ValueError(f"alert '{a.name}' routes to unknown webhook '{r}'")
            if a.metric == "feature_drift" and a.feature is None:
                raise ValueError(f"alert '{a.name}': feature_drift needs 'feature'")
        return self


class RetrainingSpec(_Model):
    schedule: str | None = Field(None, description="cron expression (UTC)")
    max_age: Duration | None = timedelta(days=30)
    on: list[str] = Field(default_factory=list, description="alert names that trigger training")

    @model_validator(mode="after")
    def _cron(self) -> RetrainingSpec:
        if self.schedule is not None:
            from croniter import croniter

            if not croniter.is_valid(self.schedule):
                raise ValueError(f"schedule is not a valid cron expression: {self.schedule!r}")
        return self


# ------------------------------------------------------------------------------------ the spec


class Spec(_Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="the pipeline's name")
    data: DataSpec = Field(default_factory=DataSpec)
    features: list[FeatureSpec] = Field(default_factory=_default_features, min_length=1)
    labels: LabelSpec = Field(default_factory=LabelSpec)
    model: ModelSpec = Field(default_factory=LightGBMModel)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    backtest: BacktestSpec = Field(default_factory=BacktestSpec)
    gates: GatesSpec = Field(default_factory=GatesSpec)
    deployment: DeploymentSpec = Field(default_factory=DeploymentSpec)
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    retraining: RetrainingSpec = Field(default_factory=RetrainingSpec)

    @model_validator(mode="after")
    def _cross_checks(self) -> Spec:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate feature names: {dupes}")
        for f in self.features:
            if f.kind == "cs_rank":
                if f.of not in names or f.of == f.name:
                    raise ValueError(f"feature '{f.name}': 'of' must name another feature")
                of = next(g for g in self.features if g.name == f.of)
                if of.kind == "cs_rank":
                    raise ValueError(f"feature '{f.name}': cannot rank a rank")
        bt = self.backtest
        if self.model.task == "regression" and not bt.short_threshold <= 0.0 <= bt.long_threshold:
            raise ValueError(
                "backtest thresholds are predicted returns for a regression model: use values "
                "around 0 (e.g. long_threshold: 0.0005, short_threshold: -0.0005)"
            )
        if self.model.task == "classification" and not (
            bt.short_threshold >= 0.0 and bt.long_threshold <= 1.0
        ):
            raise ValueError("backtest thresholds are probabilities for a classification model")
        alert_names = {a.name for a in self.monitoring.alerts}
        for trigger in self.retraining.on:
            if trigger not in alert_names:
                raise ValueError(f"retraining.on names unknown alert '{trigger}'")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def spec_hash(self) -> str:
        """Hash of the normalized spec: equal for equivalent YAML, whatever its layout."""
        doc = self.model_dump(mode="json", by_alias=True)
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


# ------------------------------------------------------------------------------ loading, errors


class LoadedSpec(typing.NamedTuple):
    spec: Spec
    path: Path

    @property
    def root(self) -> Path:
        return self.path.parent


_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster parsing


class _Loader(_BASE_LOADER):  # type: ignore[misc,valid-type]
    """YAML 1.2 booleans: only true/false, so keys like `on:` stay strings."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _ch in "tTfF":
    _Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), [_ch]
    )


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def _line_map(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[(*path, key)] = k.start_mark.line + 1
            _line_map(v, (*path, key), out)
            out[(*path, key)] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, (*path, i), out)


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Pydantic's loc without union tags and validator segments: the path as written in YAML."""
    out: list[Any] = []
    cur: Any = data
    for part in loc:
        if (isinstance(cur, dict) and part in cur) or (
            isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        ):
            cur = cur[part]
        elif isinstance(cur, dict) and (
            part == cur.get("type") or str(part).startswith("function-")
        ):
            continue  # a discriminated-union tag or a validator wrapper: not in the YAML
        else:
            cur = None  # the missing or unknown key itself, or a value inside a scalar
        out.append(part)
    return tuple(out)


def _unwrap(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [u for a in typing.get_args(tp) for u in _unwrap(a)]
    if origin in (list, dict):
        return _unwrap(typing.get_args(tp)[-1])
    return [tp]


def _allowed_keys(path: tuple[Any, ...], data: Any) -> list[str]:
    """The field names allowed at the mapping that holds the last element of `path`."""
    models: list[Any] = [Spec]
    cur = data
    for part in path[:-1]:
        nxt: list[Any] = []
        for m in models:
            if isinstance(m, type) and issubclass(m, BaseModel) and isinstance(part, str):
                for fname, f in m.model_fields.items():
                    if part in (fname, f.alias):
                        nxt.extend(_unwrap(f.annotation))
        if isinstance(part, int):
            nxt = models
        cur = (
            cur.get(part)
            if isinstance(cur, dict)
            else (cur[part] if isinstance(cur, list) else None)
        )
        if isinstance(cur, dict) and "type" in cur:
            tagged = [
                m
                for m in nxt
                if isinstance(m, type)
                and issubclass(m, BaseModel)
                and "type" in m.model_fields
                and cur["type"] in typing.get_args(m.model_fields["type"].annotation)
            ]
            nxt = tagged or nxt
        models = nxt
    keys: list[str] = []
    for m in models:
        if isinstance(m, type) and issubclass(m, BaseModel):
            keys.extend(f.alias or n for n, f in m.model_fields.items())
    return sorted(set(keys))


def _format_errors(
    err: ValidationError, data: Any, lines: dict[tuple[Any, ...], int], filename: str
) -> list[str]:
    problems: list[str] = []
    for e in err.errors():
        path = _data_path(data, tuple(e["loc"]))
        line = None
        for n in range(len(path), -1, -1):
            if path[:n] in lines:
                line = lines[path[:n]]
                break
        dotted = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(
            ".[", "["
        )
        where = f"{filename}:{line}" if line else filename
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(path, data)
            close = difflib.get_close_matches(str(path[-1]), allowed, n=1, cutoff=0.6)
            hint = (
                f" (did you mean {close[0]}?)"
                if close
                else (f" (allowed: {', '.join(allowed)})" if allowed else "")
            )
            problems.append(f"{where}: {dotted}: unknown key{hint}")
        elif e["type"] == "missing":
            problems.append(f"{where}: {dotted}: required key is missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            label = dotted or "(top level)"
            problems.append(f"{where}: {label}: {msg}")
    return problems


def parse_spec(text: str, filename: str = SPEC_FILENAME) -> Spec:
    """Parse and validate spec text; raise SpecError with file:line: path: message lines."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([f"{filename}{line}: invalid YAML: {problem}"]) from exc
    if not isinstance(data, dict):
        raise SpecError([f"{filename}:1: the spec must be a mapping of sections (name, data, ...)"])
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _line_map(node, (), lines)
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_errors(exc, data, lines, filename)) from exc


def load_spec(path: str | Path | None = None) -> LoadedSpec:
    """Load `tradeloop.yaml` from the current folder, or the given path (a file or a folder)."""
    p = Path(path) if path is not None else Path.cwd() / SPEC_FILENAME
    if p.is_dir():
        p = p / SPEC_FILENAME
    if not p.exists():
        raise SpecError([f"{p}: no spec file here (make one with `tradeloop init DIR`)"])
    return LoadedSpec(parse_spec(p.read_text(), filename=p.name), p.resolve())
