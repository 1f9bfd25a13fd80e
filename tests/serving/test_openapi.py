"""Schemathesis against the live gateway's own /openapi.json: no 5xx, and every response
matches the document (status codes, content types, bodies)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# The prediction routes get more cases: a case that reaches the model (200) must be among them,
# and about one generated case in sixteen is one (30 cases missed it about one run in seven).
EXAMPLES = {"POST /invocations": 100, "POST /v2/models/{name}/infer": 100}


def fuzz(operation: Any, base_url: str, examples: int = 30) -> set[int]:
    """Run `examples` generated requests against one operation; return the statuses seen."""
    seen: set[int] = set()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests every run: a pass is not luck
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        seen.add(case.call_and_validate(base_url=base_url, checks=CHECKS).status_code)

    run()
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["stack", "trading_stack"])
def test_schemathesis(fixture: str, request: pytest.FixtureRequest) -> None:
    stack: Any = request.getfixturevalue(fixture)
    schema = schemathesis.openapi.from_url(stack.url + "/openapi.json")
    statuses: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if fixture == "trading_stack" and not operation.path.startswith("/v1/"):
            continue  # the rest is the same as on `stack`
        name = f"{operation.method.upper()} {operation.path}"
        statuses[name] = fuzz(operation, stack.url, EXAMPLES.get(name, 30))
    if fixture == "trading_stack":
        assert set(statuses) == {"POST /v1/bars", "GET /v1/signals/{symbol}", "POST /v1/retrain"}
        assert 200 in statuses["POST /v1/bars"]
    else:
        assert {"POST /invocations", "POST /v2/models/{name}/infer", "GET /readyz"} <= set(statuses)
        # the document is precise enough that generated requests reach the models
        assert 200 in statuses["POST /invocations"], statuses["POST /invocations"]
        assert 200 in statuses["POST /v2/models/{name}/infer"], statuses[
            "POST /v2/models/{name}/infer"
        ]
