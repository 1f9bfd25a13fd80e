"""The whole spec of one pipeline: its sections, and the rules that span sections."""

from __future__ import annotations

import hashlib
import json

from pydantic import Field, model_validator

from tradeloop.spec.base import SpecModel
from tradeloop.spec.data import DataSpec
from tradeloop.spec.deployment import DeploymentSpec
from tradeloop.spec.features import FeatureSpec, LabelSpec, check_feature_list, default_features
from tradeloop.spec.model import LightGBMModel, ModelSpec
from tradeloop.spec.monitoring import MonitoringSpec, RetrainingSpec, check_retraining_triggers
from tradeloop.spec.training import (
    BacktestSpec,
    GatesSpec,
    TrainingSpec,
    check_selection_gates,
    check_thresholds,
)


class Spec(SpecModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="the pipeline's name")
    data: DataSpec = Field(default_factory=DataSpec)
    features: list[FeatureSpec] = Field(default_factory=default_features, min_length=1)
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
        """What no section can check alone (each rule lives beside the section it reads)."""
        check_feature_list(self.features)
        bt = self.backtest
        check_thresholds(bt.long_threshold, bt.short_threshold, self.model.task)
        check_retraining_triggers(self.monitoring, self.retraining)
        check_selection_gates(self.gates, self.training.tuning)
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def sticky_units(self) -> list[str]:
        """The units a canary is split over by rank (`control.canary_units`); [] if unknown."""
        serving = self.deployment.serving
        if serving.units is not None:
            return list(serving.units)
        if serving.sticky_key == "symbol" and self.data.source == "simulator":
            return list(self.data.simulator.symbols)
        return []

    def spec_hash(self) -> str:
        """Hash of the normalized spec: equal for equivalent YAML, whatever its layout."""
        doc = self.model_dump(mode="json", by_alias=True)
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
