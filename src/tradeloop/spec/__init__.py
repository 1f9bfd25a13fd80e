"""The pipeline spec (`tradeloop.yaml`): pydantic models and located, helpful errors.

Unknown keys are errors everywhere (`extra="forbid"`), and every error names the YAML line and
the field path, with a suggestion for a misspelt key. One module per concern: `durations`,
`data`, `features` (with labels), `model`, `training` (with backtest and gates), `deployment`,
`monitoring` (with retraining), `pipeline` (the whole `Spec` and its cross-section rules) and
`loader` (YAML with file:line errors). Import from here; the modules are the layout, not the API.
"""

from tradeloop.spec.base import SpecModel
from tradeloop.spec.data import (
    DATA_SOURCES,
    ColumnMapping,
    DataSourceName,
    DataSpec,
    Regime,
    SimulatorSpec,
    StreamSpec,
    ValidationRules,
)
from tradeloop.spec.deployment import (
    AnalysisSpec,
    BatchingSpec,
    CanaryStep,
    DeploymentSpec,
    GitSpec,
    ServingSpec,
    ShadowSpec,
)
from tradeloop.spec.durations import Duration, format_duration, parse_duration
from tradeloop.spec.features import (
    RESERVED_NAMES,
    STD_KINDS,
    FeatureKind,
    FeatureSpec,
    LabelSpec,
    check_feature,
    check_feature_list,
    check_features,
    default_features,
)
from tradeloop.spec.loader import SPEC_FILENAME, LoadedSpec, load_spec, load_yaml, parse_spec
from tradeloop.spec.model import LightGBMModel, LinearModel, ModelSpec
from tradeloop.spec.monitoring import (
    DRIFT_METHODS,
    AlertMetric,
    AlertRule,
    DriftMethodName,
    DriftSpec,
    MonitoringSpec,
    PerformanceSpec,
    RetrainingSpec,
    SLOSpec,
    WebhookRoute,
    check_alert_rules,
    check_retraining_triggers,
)
from tradeloop.spec.pipeline import Spec
from tradeloop.spec.training import (
    DEFAULT_LONG_THRESHOLD,
    DEFAULT_SHORT_THRESHOLD,
    BacktestSpec,
    ChampionGate,
    GatesSpec,
    SplitSpec,
    TrainingSpec,
    TuningSpec,
    check_selection_gates,
    check_threshold_order,
    check_thresholds,
)

_default_features = default_features  # the name bench/ and older callers import

__all__ = [
    "DATA_SOURCES",
    "DEFAULT_LONG_THRESHOLD",
    "DEFAULT_SHORT_THRESHOLD",
    "DRIFT_METHODS",
    "RESERVED_NAMES",
    "SPEC_FILENAME",
    "STD_KINDS",
    "AlertMetric",
    "AlertRule",
    "AnalysisSpec",
    "BacktestSpec",
    "BatchingSpec",
    "CanaryStep",
    "ChampionGate",
    "ColumnMapping",
    "DataSourceName",
    "DataSpec",
    "DeploymentSpec",
    "DriftMethodName",
    "DriftSpec",
    "Duration",
    "FeatureKind",
    "FeatureSpec",
    "GatesSpec",
    "GitSpec",
    "LabelSpec",
    "LightGBMModel",
    "LinearModel",
    "LoadedSpec",
    "ModelSpec",
    "MonitoringSpec",
    "PerformanceSpec",
    "Regime",
    "RetrainingSpec",
    "SLOSpec",
    "ServingSpec",
    "ShadowSpec",
    "SimulatorSpec",
    "Spec",
    "SpecModel",
    "SplitSpec",
    "StreamSpec",
    "TrainingSpec",
    "TuningSpec",
    "ValidationRules",
    "WebhookRoute",
    "check_alert_rules",
    "check_feature",
    "check_feature_list",
    "check_features",
    "check_retraining_triggers",
    "check_selection_gates",
    "check_threshold_order",
    "check_thresholds",
    "default_features",
    "format_duration",
    "load_spec",
    "load_yaml",
    "parse_duration",
    "parse_spec",
]
