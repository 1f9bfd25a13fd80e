"""What a model expects as input, carried with the model so consumers build the same matrix.

Every adapter exports ONNX with one fixed interface: input `input` float32 [N, n_features],
output `prediction` float32 [N]. The `InputSchema` names the features in order; it is embedded
in the ONNX metadata, so serving needs nothing but the model file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tradeloop.errors import BadInput

if TYPE_CHECKING:
    import polars as pl

Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")
INPUT_NAME = "input"
OUTPUT_NAME = "prediction"
SCHEMA_METADATA_KEY = "tradeloop.input_schema"


@dataclass(frozen=True)
class InputSchema:
    """What a model expects: these features, in this order, as one float32 matrix."""

    feature_names: tuple[str, ...]
    task: Task = "classification"
    dtype: str = "float32"
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME

    def __post_init__(self) -> None:
        if isinstance(self.feature_names, str):
            raise BadInput("feature_names must be a list of names, not one string")
        names = tuple(self.feature_names)
        object.__setattr__(self, "feature_names", names)
        if not names:
            raise BadInput("an input schema needs at least one feature")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise BadInput(f"duplicate feature names in input schema: {dupes}")
        if self.dtype != "float32":
            raise BadInput(f"input schema dtype must be float32, got {self.dtype!r}")
        if self.task not in TASKS:
            raise BadInput(f"input schema task must be classification or regression: {self.task!r}")

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def output(self) -> str:
        """What `prediction` means: a probability of class 1, or a predicted value."""
        return "probability" if self.task == "classification" else "value"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["feature_names"] = list(self.feature_names)
        d["output"] = self.output
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSchema:
        d = {k: v for k, v in data.items() if k != "output"}
        try:
            return cls(**d)
        except TypeError as exc:
            raise BadInput(f"not an input schema: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> InputSchema:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"input schema is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise BadInput("input schema JSON must be an object")
        return cls.from_dict(data)

    def to_matrix(self, frame: pl.DataFrame) -> np.ndarray:
        """The model's input from a features frame: schema columns, in order, as float32."""
        missing = [n for n in self.feature_names if n not in frame.columns]
        if missing:
            raise BadInput(f"features frame lacks columns the model needs: {missing}")
        return np.ascontiguousarray(frame.select(self.feature_names).to_numpy(), dtype=np.float32)
