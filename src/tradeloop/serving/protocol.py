"""The serving-protocol plug-in contract and its registry.

A protocol (MLflow's `/invocations`, the Open Inference Protocol, tradeloop's trading
endpoints) translates its envelopes to `Rows`, calls `Gateway.score` and renders the answer.
It declares everything else about itself as data, so the app, the fast path, the OpenAPI
document and the conformance suite are all generated from one table:

- `operations()`: its routes as `Op`s (path, method, handler, and what OpenAPI needs);
- `schemas(doc)`: the pydantic models its `Op`s name (built per document, from the features
  and versions being served);
- `hot_paths()`: the prediction routes worth `hot_routes`' direct lookup;
- `health_paths()`: GET paths that answer 200 once a model is loaded;
- `example(features, row)`: a valid exchange and how to read the prediction out of it;
- `start()` / `stop()`: lifespan hooks (the trading protocol keeps its online state).

Adding one: write a factory `(gateway, options) -> protocol | None` (None: not enabled by these
options), `register_protocol("name", factory)` (`tradeloop.serving.protocol_registry`), and
pass `check_serving_protocol(factory)` (`tradeloop.serving.conformance`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tradeloop.evaluation.positions import PositionRule
from tradeloop.serving.context import Ctx
from tradeloop.spec import FeatureSpec

if TYPE_CHECKING:
    from tradeloop.serving.gateway import Gateway

Style = Literal["mlflow", "v2"]  # the error body shape: {"error_code", "message"} or {"error"}
Handler = Callable[[Request, Ctx], Awaitable[Response]]
JSON = "application/json"


@dataclass(frozen=True)
class Reply:
    """One documented response: a component schema name (None: no schema) and its media."""

    schema: str | None
    description: str
    media: str = JSON


@dataclass(frozen=True)
class Op:
    """One route, and what the OpenAPI document says about it."""

    method: str
    path: str
    handler: Handler
    operation_id: str
    replies: Mapping[int, Reply]
    errors: tuple[int, ...] = ()  # statuses answered with the protocol's error body
    body: Mapping[str, str | None] = field(default_factory=dict)  # media -> schema (None: text)
    style: Style = "mlflow"
    summary: str = ""
    predict: bool = False  # a prediction: takes the routing headers, and `token`
    token: bool = False  # needs a predictor token when the gateway requires tokens
    operator: bool = False  # always needs an operator token

    def route(self, gw: Gateway) -> Route:
        return Route(
            self.path,
            gw.endpoint(self.path, self.handler, self.style, predict=self.predict),
            methods=[self.method],
        )


@dataclass(frozen=True)
class DocContext:
    """What is being served when a document is asked for."""

    model_name: str
    features: tuple[str, ...]
    versions: tuple[str, ...]
    require_token: bool


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any = None


@dataclass(frozen=True)
class Example:
    """Requests sent in order; `read` takes the last answer's JSON body and returns the
    feature values it was scored on and the prediction it reports."""

    calls: tuple[Call, ...]
    read: Callable[[Any], tuple[Mapping[str, float], float]]


@dataclass(frozen=True)
class ProtocolOptions:
    """What the app was built with, beyond the gateway: a protocol takes what it needs."""

    rule: PositionRule = field(default_factory=PositionRule)
    features: tuple[FeatureSpec, ...] = ()
    state_dir: Path | None = None
    save_state: bool = True  # False: read the saved state but never write it (a sibling does)


class ServingProtocol(Protocol):
    name: str

    def operations(self) -> list[Op]: ...

    def schemas(self, doc: DocContext) -> list[type[BaseModel]]: ...

    def hot_paths(self) -> Mapping[str, Mapping[str, str]]: ...

    def health_paths(self) -> list[str]: ...

    def example(self, features: Sequence[str], row: Sequence[float]) -> Example: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


ProtocolFactory = Callable[["Gateway", ProtocolOptions], "ServingProtocol | None"]


class Base:
    """Defaults for the optional parts of the contract."""

    name = ""

    def hot_paths(self) -> Mapping[str, Mapping[str, str]]:
        return {}

    def health_paths(self) -> list[str]:
        return []

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None
