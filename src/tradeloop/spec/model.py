"""The `model` section: one model type per class, chosen by `type`."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from tradeloop.spec.base import SpecModel


class LightGBMModel(SpecModel):
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


class LinearModel(SpecModel):
    type: Literal["linear"]
    task: Literal["classification", "regression"] = "classification"
    alpha: float = Field(1.0, gt=0, description="L2 strength (1/C for classification)")


ModelSpec = Annotated[Union[LightGBMModel, LinearModel], Field(discriminator="type")]  # noqa: UP007
