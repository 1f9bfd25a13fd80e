"""Every registered serving protocol passes the shared conformance suite, and the suite
catches a protocol that breaks the contract."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from tradeloop.errors import BadInput
from tradeloop.serving.conformance import check_serving_protocol
from tradeloop.serving.context import Ctx
from tradeloop.serving.gateway import Gateway
from tradeloop.serving.protocol import (
    JSON,
    Base,
    Call,
    DocContext,
    Example,
    Op,
    ProtocolFactory,
    ProtocolOptions,
    Reply,
)
from tradeloop.serving.protocol_registry import PROTOCOLS, register_protocol


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_registered_protocol_conforms(name: str, tmp_path: Path) -> None:
    assert check_serving_protocol(PROTOCOLS[name], workdir=tmp_path) == []


class Careless(Base):
    """Answers bad input with 200 and plain text, and reports a made-up prediction."""

    name = "careless"

    def operations(self) -> list[Op]:
        async def score(request: Request, ctx: Ctx) -> Response:
            return PlainTextResponse("fine")

        async def health(request: Request, ctx: Ctx) -> Response:
            return PlainTextResponse("down", status_code=503)

        return [
            Op("POST", "/score", score, "score", {200: Reply(None, "ok")}, body={JSON: None}),
            Op("GET", "/alive", health, "alive", {200: Reply(None, "ok")}),
        ]

    def schemas(self, doc: DocContext) -> list[type[BaseModel]]:
        return []

    def hot_paths(self) -> Mapping[str, Mapping[str, str]]:
        return {"/gone": {}}

    def health_paths(self) -> list[str]:
        return ["/alive"]

    def example(self, features: Sequence[str], row: Sequence[float]) -> Example:
        given = dict(zip(features, row, strict=True))
        return Example((Call("GET", "/healthz"),), lambda answer: (given, 42.0))


def careless(gw: Gateway, options: ProtocolOptions) -> Careless:
    return Careless()


def test_the_suite_names_each_broken_rule(tmp_path: Path) -> None:
    failures = check_serving_protocol(careless, workdir=tmp_path)
    text = "\n".join(failures)
    assert "hot path /gone is not a route" in text
    assert "POST /score with an empty object: status 200, expected a 4xx error" in text
    assert "POST /score with a body that is not JSON: status 200" in text
    assert "health path /alive: status 503" in text
    assert "example: the answer says 42.0, the model gives" in text


def test_a_factory_that_enables_nothing_fails(tmp_path: Path) -> None:
    nothing: ProtocolFactory = lambda gw, options: None  # noqa: E731
    assert check_serving_protocol(nothing, workdir=tmp_path) == [
        "the factory enabled no protocol (with features, a store and a model given)"
    ]


def test_register_protocol_refuses_a_second_factory_under_a_taken_name() -> None:
    register_protocol("mlflow", PROTOCOLS["mlflow"])  # the same factory again: a no-op
    with pytest.raises(BadInput, match="'mlflow' is registered already"):
        register_protocol("mlflow", careless)
    try:
        register_protocol("careless", careless)
        assert PROTOCOLS["careless"] is careless
    finally:
        del PROTOCOLS["careless"]
