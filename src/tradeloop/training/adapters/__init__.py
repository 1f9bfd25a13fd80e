"""Model adapters: one contract (`base`), one ONNX interface (`schema`, `onnx_io`), and the
built-in members, registered here by model type.

The members import `adapters.base` only; this package imports the members, so registering a
built-in creates no import cycle. An external adapter subclasses `ModelAdapter`, calls
`register_adapter(name, cls)` and passes `conformance.check_adapter(cls)`.
"""

from __future__ import annotations

from tradeloop.training.adapters.base import (
    ModelAdapter,
    NotFittedError,
    adapter_class,
    make_adapter,
    register_adapter,
    registered_adapters,
)
from tradeloop.training.adapters.lgbm import LightGBMAdapter
from tradeloop.training.adapters.linear import LinearAdapter
from tradeloop.training.adapters.onnx_io import onnx_input_schema, onnx_predict
from tradeloop.training.adapters.schema import (
    INPUT_NAME,
    OUTPUT_NAME,
    SCHEMA_METADATA_KEY,
    InputSchema,
    Task,
)

register_adapter(LightGBMAdapter.model_type, LightGBMAdapter)
register_adapter(LinearAdapter.model_type, LinearAdapter)

__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAME",
    "SCHEMA_METADATA_KEY",
    "InputSchema",
    "LightGBMAdapter",
    "LinearAdapter",
    "ModelAdapter",
    "NotFittedError",
    "Task",
    "adapter_class",
    "make_adapter",
    "onnx_input_schema",
    "onnx_predict",
    "register_adapter",
    "registered_adapters",
]
