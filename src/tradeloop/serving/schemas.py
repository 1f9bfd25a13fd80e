"""pydantic building blocks for the protocols' OpenAPI schemas (documentation only: requests
are validated by hand on the request path, which is faster for single rows).

The number and feature-name types are the request path's own rules written as schema: a
feature value is a finite float32, a feature name is one the served model uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

F32_MAX = 3.4028234663852886e38

F32 = Annotated[float, Field(ge=-F32_MAX, le=F32_MAX)]  # finite float32
Number = float


def feature_name(features: Sequence[str]) -> Any:
    """A feature the served model uses (any string when none is loaded yet)."""
    return Literal[tuple(features)] if features else str


def sized(item: Any, lo: int, hi: int | None = None) -> Any:
    """A list of `item` of length lo..hi."""
    return Annotated[list[item], Field(min_length=lo, max_length=hi)]


def fixed(schema: dict[str, Any], item: Any) -> Any:
    """A list whose JSON schema also carries `schema` (e.g. an enum of exact shapes)."""
    return Annotated[list[item], Field(json_schema_extra=schema)]


def unique(item: Any, lo: int) -> Any:
    """A list of at least `lo` distinct `item`s."""
    return Annotated[list[item], Field(min_length=lo, json_schema_extra={"uniqueItems": True})]


class Strict(BaseModel):
    """A request object: fields other than these are refused."""

    model_config = ConfigDict(extra="forbid")


def feature_object(name: str, features: Sequence[str], value: Any, doc: str) -> type[BaseModel]:
    """An object with every feature (by its exact name, whatever characters it holds) and
    nothing else, each holding `value`."""
    fields: dict[str, Any] = {f"f{i}": (value, Field(alias=n)) for i, n in enumerate(features)}
    model: type[BaseModel] = create_model(name, __base__=Strict, __doc__=doc, **fields)
    return model
