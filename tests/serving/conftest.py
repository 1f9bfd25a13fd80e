"""Serving fixtures: contract-exact ONNX models, a model folder, a SQLite store, a live server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import uvicorn
from onnx import TensorProto, helper, numpy_helper
from starlette.applications import Starlette

from tradeloop.clock import SimulatedClock
from tradeloop.serving.server import build_app, uvicorn_config
from tradeloop.serving.source import DirectorySource
from tradeloop.store import Store
from tradeloop.store.deployments import Deployed, apply

FEATURES = ["ret_1", "ret_5", "vol_20"]
MODEL = "demo"


def linear_onnx(
    weights: list[float], bias: float = 0.0, *, classifier: bool = True, output_2d: bool = False
) -> bytes:
    """The serving contract built by hand: input `input` [N, n] float32 -> `prediction` [N]
    (or [N, 1]) float32; sigmoid(x·w + b) for a classifier, x·w + b for a regressor."""
    n = len(weights)
    w = numpy_helper.from_array(np.array(weights, dtype=np.float32).reshape(n, 1), "w")
    b = numpy_helper.from_array(np.array([bias], dtype=np.float32), "b")
    shape = numpy_helper.from_array(
        np.array([-1, 1] if output_2d else [-1], dtype=np.int64), "shape"
    )
    nodes = [
        helper.make_node("MatMul", ["input", "w"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["z"]),
    ]
    last = "z"
    if classifier:
        nodes.append(helper.make_node("Sigmoid", ["z"], ["p"]))
        last = "p"
    nodes.append(helper.make_node("Reshape", [last, "shape"], ["prediction"]))
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, n])],
        [
            helper.make_tensor_value_info(
                "prediction", TensorProto.FLOAT, [None, 1] if output_2d else [None]
            )
        ],
        [w, b, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def logistic_onnx(n_features: int, seed: int = 0) -> tuple[bytes, Any]:
    """A fitted scikit-learn LogisticRegression through skl2onnx, post-processed to the
    contract: P(class 1) as `prediction` [N]. Returns the bytes and the estimator."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, n_features)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    est = LogisticRegression().fit(x, y)
    raw = to_onnx(
        est,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        options={id(est): {"zipmap": False}},
        target_opset=17,
    )
    g = raw.graph
    prob = next(o.name for o in g.output if o.name != "label")
    g.initializer.extend([numpy_helper.from_array(np.array([1], dtype=np.int64), "one_idx")])
    g.node.extend(
        [
            helper.make_node("Gather", [prob, "one_idx"], ["p1"], axis=1),
            helper.make_node("Reshape", ["p1", "minus_one"], ["prediction"]),
        ]
    )
    g.initializer.extend([numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus_one")])
    del g.output[:]
    g.output.extend([helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [None])])
    onnx.checker.check_model(raw)
    return raw.SerializeToString(), est


@pytest.fixture
def onnx_linear() -> Callable[..., bytes]:
    """`linear_onnx` as a fixture (test modules cannot import conftest)."""
    return linear_onnx


@pytest.fixture
def onnx_logistic() -> Callable[..., tuple[bytes, Any]]:
    return logistic_onnx


@pytest.fixture
def deployer(store: Store) -> Callable[..., None]:
    """deployer(("champion", "1", "live", 90), ("challenger", "2", "live", 10))"""
    return lambda *rows: deploy(store, *rows)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(datetime(2024, 3, 1, 9, 30, tzinfo=UTC))


@pytest.fixture
def store(tmp_path: Path, clock: SimulatedClock) -> Iterator[Store]:
    s = Store.open("sqlite:///" + str(tmp_path / "db.sqlite"), clock)
    yield s
    s.close()


@pytest.fixture
def models(tmp_path: Path) -> DirectorySource:
    """v1 and v2 of MODEL (different weights, so answers tell them apart)."""
    src = DirectorySource(tmp_path / "models")
    src.put(MODEL, "1", linear_onnx([1.0, 0.5, -0.25], 0.0), FEATURES)
    src.put(MODEL, "2", linear_onnx([-1.0, 0.25, 0.5], 0.1), FEATURES)
    return src


def deploy(store: Store, *rows: tuple[str, str, str, int]) -> None:
    """deploy(store, ("champion", "1", "live", 90), ("challenger", "2", "live", 10))"""
    apply(
        store,
        MODEL,
        [Deployed(MODEL, v, ver, mode, w) for v, ver, mode, w in rows],  # type: ignore[arg-type]
        actor="test",
        reason="test",
    )


@dataclass
class Live:
    """A uvicorn server on a loopback port in a thread."""

    app: Starlette
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_live(app: Starlette, **overrides: Any) -> Live:
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, **overrides))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return Live(app, f"http://127.0.0.1:{port}", server, thread)


@dataclass
class Stack:
    """One gateway on a loopback port shared by a module's read-only tests."""

    url: str
    app: Starlette
    store: Store
    source: DirectorySource
    state: Path


def make_stack(
    root: Path, rows: tuple[tuple[str, str, str, int], ...], **kwargs: Any
) -> tuple[Stack, Live]:
    clock = SimulatedClock(datetime(2024, 3, 1, 9, 30, tzinfo=UTC))
    store = Store.open("sqlite:///" + str(root / "db.sqlite"), clock)
    source = DirectorySource(root / "models")
    source.put(MODEL, "1", linear_onnx([1.0, 0.5, -0.25], 0.0), FEATURES)
    source.put(MODEL, "2", linear_onnx([-1.0, 0.25, 0.5], 0.1), FEATURES)
    deploy(store, *rows)
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("predlog_flush_interval", 0.05)
    app = build_app(store, MODEL, source, state_dir=root / "state", clock=clock, **kwargs)
    server = start_live(app)
    return Stack(server.url, app, store, source, root / "state"), server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Champion v1 live at 100%, challenger v2 in shadow; no tokens."""
    st, server = make_stack(
        tmp_path_factory.mktemp("stack"),
        (("champion", "1", "live", 100), ("challenger", "2", "shadow", 0)),
    )
    yield st
    server.stop()
    st.store.close()


@pytest.fixture(scope="module")
def trading_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Like `stack`, with the trading endpoints on (the spec's default features)."""
    from tradeloop.spec import Spec

    st, server = make_stack(
        tmp_path_factory.mktemp("trading"),
        (("champion", "1", "live", 100),),
        features=Spec(name="t").features,
    )
    yield st
    server.stop()
    st.store.close()


@pytest.fixture(scope="module")
def grpc_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Like `stack` (v1 live, v2 in shadow), also serving gRPC on a free port: the bound one
    is `stack.app.state.grpc.port`."""
    st, server = make_stack(
        tmp_path_factory.mktemp("grpc"),
        (("champion", "1", "live", 100), ("challenger", "2", "shadow", 0)),
        grpc_port=0,
    )
    yield st
    server.stop()
    st.store.close()


AppFactory = Callable[..., Starlette]
LiveFactory = Callable[[Starlette], Live]


@pytest.fixture
def live() -> Iterator[LiveFactory]:
    """start(app) -> Live; every server started is stopped (gracefully) after the test."""
    started: list[Live] = []

    def start(app: Starlette) -> Live:
        server = start_live(app)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def make_app(
    store: Store, models: DirectorySource, tmp_path: Path, clock: SimulatedClock
) -> AppFactory:
    def make(**kwargs: Any) -> Starlette:
        kwargs.setdefault("state_dir", tmp_path / "state")
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("poll_interval", 0.05)
        kwargs.setdefault("predlog_flush_interval", 0.05)
        return build_app(store, MODEL, models, **kwargs)

    return make
