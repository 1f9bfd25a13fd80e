"""The conformance suite every serving protocol passes, built-in or plug-in.

    from tradeloop.serving.conformance import check_serving_protocol
    assert check_serving_protocol(my_factory) == []

It builds a throwaway gateway (SQLite store, a linear ONNX classifier over the default spec's
features, the trading features on) speaking only the protocol under test, and checks:

- the protocol names itself, declares routes with unique operation ids, and its hot paths are
  among its routes (a stale fast-path entry would bypass nothing and confuse everyone);
- every health path answers 200 once the model is loaded;
- every route answers an unknown path parameter, and every route taking a body answers an
  empty object, a body that is not JSON and a wrong Content-Type, with a 4xx JSON error in the
  protocol's shape whose message names the problem (the unknown value, "JSON",
  "Content-Type"; any non-empty message for the empty object);
- the protocol's own example is answered, and the prediction it reports is the model's output
  on the features it reports.

It returns the failures as sentences (an empty list: the protocol conforms), so a plug-in's
test can show them all at once rather than stop at the first.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from starlette.testclient import TestClient

from tradeloop.clock import SimulatedClock
from tradeloop.serving.protocol import Op, ProtocolFactory, ServingProtocol
from tradeloop.serving.server import build_app
from tradeloop.serving.source import DirectorySource
from tradeloop.spec import Spec
from tradeloop.store import Store
from tradeloop.store.deployments import Deployed, apply

__all__ = ["check_serving_protocol"]

MODEL = "conformance"
UNKNOWN = "no-such-thing"
_PARAM = re.compile(r"\{([^}]+)\}")


def _linear_classifier(n: int) -> bytes:
    """sigmoid(x · w) over `n` features: input `input` [N, n] -> `prediction` [N] float32."""
    w = numpy_helper.from_array(np.linspace(-1.0, 1.0, n, dtype=np.float32).reshape(n, 1), "w")
    shape = numpy_helper.from_array(np.array([-1], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("MatMul", ["input", "w"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["p"]),
        helper.make_node("Reshape", ["p", "shape"], ["prediction"]),
    ]
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, n])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [None])],
        [w, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


@contextmanager
def _gateway(factory: ProtocolFactory, root: Path) -> Iterator[tuple[TestClient, Any]]:
    clock = SimulatedClock(datetime(2024, 3, 1, 9, 30, tzinfo=UTC))
    store = Store.open("sqlite:///" + str(root / "db.sqlite"), clock)
    try:
        features = Spec(name=MODEL).features
        source = DirectorySource(root / "models")
        names = [f.name for f in features]
        source.put(MODEL, "1", _linear_classifier(len(names)), names)
        apply(
            store,
            MODEL,
            [Deployed(MODEL, "champion", "1", "live", 100)],
            actor="conformance",
            reason="conformance",
        )
        app = build_app(
            store,
            MODEL,
            source,
            state_dir=root / "state",
            clock=clock,
            features=list(features),
            protocols={"under-test": factory},
            poll_interval=3600.0,
        )
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, app
    finally:
        store.close()


def _message(op: Op, body: Any) -> str | None:
    """The error message, if `body` is an error in `op`'s protocol's shape."""
    if not isinstance(body, dict):
        return None
    value = body.get("error") if op.style == "v2" else body.get("message")
    if op.style != "v2" and not isinstance(body.get("error_code"), str):
        return None
    return value if isinstance(value, str) and value.strip() else None


def _check_error(
    client: TestClient, op: Op, path: str, what: str, words: str, **request: Any
) -> list[str]:
    r = client.request(op.method, path, **request)
    where = f"{op.method} {op.path} with {what}"
    if not 400 <= r.status_code < 500:
        return [f"{where}: status {r.status_code}, expected a 4xx error"]
    try:
        body = r.json()
    except ValueError:
        return [f"{where}: the {r.status_code} answer is not JSON: {r.text[:80]!r}"]
    message = _message(op, body)
    if message is None:
        return [f"{where}: the error body is not the protocol's error shape: {body!r}"]
    if words.lower() not in message.lower():
        return [f"{where}: the message does not name the problem ({words!r}): {message!r}"]
    return []


def _fill(path: str, values: dict[str, str]) -> str | None:
    """`path` with its parameters filled from `values` (None if one is not there)."""
    names = _PARAM.findall(path)
    if any(n not in values for n in names):
        return None
    return _PARAM.sub(lambda m: values[m.group(1)], path)


def _check_routes(client: TestClient, protocol: ServingProtocol, ops: list[Op]) -> list[str]:
    failures: list[str] = []
    known = {"name": MODEL, "version": "1"}
    for op in ops:
        names = _PARAM.findall(op.path)
        if names:
            path = _PARAM.sub(UNKNOWN, op.path)
            failures += _check_error(client, op, path, f"'{UNKNOWN}' for {names}", UNKNOWN, json={})
        if op.method not in ("POST", "PUT", "PATCH") or not op.body:
            continue
        real = _fill(op.path, known)
        if real is None:
            continue
        json_headers = {"content-type": "application/json"}
        failures += _check_error(client, op, real, "an empty object", "", json={})
        failures += _check_error(
            client,
            op,
            real,
            "a body that is not JSON",
            "JSON",
            content=b"{nope",
            headers=json_headers,
        )
        failures += _check_error(
            client,
            op,
            real,
            "Content-Type text/plain",
            "Content-Type",
            content=b"{}",
            headers={"content-type": "text/plain"},
        )
    for path in protocol.health_paths():
        r = client.get(path)
        if r.status_code != 200:
            failures.append(f"health path {path}: status {r.status_code} with a model loaded")
    return failures


def _check_example(client: TestClient, protocol: ServingProtocol, app: Any) -> list[str]:
    model = app.state.gateway.snapshot.primary.model
    names = list(model.feature_names)
    row = [0.01 * (i + 1) for i in range(len(names))]
    example = protocol.example(names, row)
    answer: Any = None
    for call in example.calls:
        r = client.request(call.method, call.path, json=call.json)
        if not 200 <= r.status_code < 300:
            return [f"example {call.method} {call.path}: status {r.status_code}: {r.text[:200]}"]
        answer = r.json()
    try:
        features, prediction = example.read(answer)
        x = np.array([[features[n] for n in names]], dtype=np.float32)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return [f"example: cannot read the prediction and its features from {answer!r}: {exc}"]
    expected = float(model.predict(x)[0])
    if not np.isclose(prediction, expected, rtol=1e-5, atol=1e-6):
        return [f"example: the answer says {prediction}, the model gives {expected}"]
    return []


def check_serving_protocol(factory: ProtocolFactory, *, workdir: Path | None = None) -> list[str]:
    """The contract's failures for the protocol `factory` makes (empty: it conforms).

    `workdir` holds the throwaway gateway's store and state (default: a temporary folder)."""
    with (
        tempfile.TemporaryDirectory(dir=workdir) as tmp,
        _gateway(factory, Path(tmp)) as (
            client,
            app,
        ),
    ):
        speaking = list(app.state.protocols.values())
        if not speaking:
            return ["the factory enabled no protocol (with features, a store and a model given)"]
        (protocol,) = speaking
        failures: list[str] = []
        ops = protocol.operations()
        if not protocol.name:
            failures.append("the protocol has no name")
        if not ops:
            failures.append("the protocol declares no routes")
        ids = [op.operation_id for op in ops]
        if len(set(ids)) != len(ids):
            failures.append(f"operation ids repeat: {sorted(ids)}")
        paths = {op.path for op in ops}
        failures += [f"hot path {p} is not a route" for p in protocol.hot_paths() if p not in paths]
        failures += _check_routes(client, protocol, ops)
        failures += _check_example(client, protocol, app)
        return failures
