"""The gRPC listener's life: its port setting, a port in use, the compiled stubs and their
private pool, unserved RPCs, and a hot swap under gRPC load that fails no call."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as tc
from google.protobuf import descriptor_pool
from pydantic import ValidationError
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException

from tradeloop.errors import BadInput
from tradeloop.serving.grpc import GrpcServer, stubs
from tradeloop.spec import ServingSpec

MODEL = "demo"
ROW = np.array([[0.5, -0.25, 1.0]], dtype=np.float32)


def test_grpc_port_setting() -> None:
    assert ServingSpec().grpc_port is None  # off unless asked for
    assert ServingSpec(grpc_port=8081).grpc_port == 8081
    for bad in (-1, 65536):
        with pytest.raises(ValidationError, match="grpc_port"):
            ServingSpec(grpc_port=bad)


def test_a_port_in_use_is_a_clear_error(make_app: Any) -> None:
    gw = make_app().state.gateway
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BadInput, match=f"cannot listen for gRPC on 127.0.0.1:{port}"):
            asyncio.run(GrpcServer(gw, "127.0.0.1", port).start())


def test_stubs_live_in_a_private_pool_and_speak_tritonclients_wire_format() -> None:
    ours = stubs.load()["ModelInferRequest"]
    assert ours.DESCRIPTOR.full_name == service_pb2.ModelInferRequest.DESCRIPTOR.full_name
    assert ours.DESCRIPTOR.file.pool is not descriptor_pool.Default()
    theirs = service_pb2.ModelInferRequest(model_name=MODEL, model_version="2", id="w")
    theirs.inputs.add(name="input", datatype="FP32", shape=[1, 3])
    theirs.raw_input_contents.append(ROW.tobytes())
    mine = ours.FromString(theirs.SerializeToString())
    assert (mine.model_name, mine.model_version, mine.id) == (MODEL, "2", "w")
    assert list(mine.inputs[0].shape) == [1, 3] and mine.raw_input_contents[0] == ROW.tobytes()


def test_stub_cache_is_rebuilt_when_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADELOOP_CACHE_DIR", str(tmp_path))
    first = stubs.descriptor_set()
    (cached,) = (tmp_path / "grpc").glob("inference-*.pb")
    assert cached.read_bytes() == first
    cached.write_bytes(first[: len(first) // 2])  # a truncated write, say
    stubs.load.cache_clear()
    try:
        assert "ModelInfer" in stubs.load().methods
        assert cached.read_bytes() == first
    finally:
        stubs.load.cache_clear()


def test_rpcs_tradeloop_does_not_serve_are_unimplemented(grpc_stack: Any) -> None:
    with tc.InferenceServerClient(f"127.0.0.1:{grpc_stack.app.state.grpc.port}") as client:
        with pytest.raises(InferenceServerException) as err:
            client.get_model_repository_index()
        assert err.value.status() == "StatusCode.UNIMPLEMENTED"
        assert client.is_server_live()


def test_hot_swap_under_grpc_load_fails_no_call(make_app: Any, live: Any, deployer: Any) -> None:
    deployer(("champion", "1", "live", 100))
    app = make_app(grpc_port=0)
    live(app)
    versions: list[str] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def load() -> None:
        with tc.InferenceServerClient(f"127.0.0.1:{app.state.grpc.port}") as client:
            x = tc.InferInput("input", [1, 3], "FP32")
            x.set_data_from_numpy(ROW)
            while not stop.is_set():
                try:
                    versions.append(client.infer(MODEL, [x]).get_response().model_version)
                except InferenceServerException as exc:
                    failures.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: "1" in versions)
        deployer(("champion", "2", "live", 100))
        wait_until(lambda: versions[-1:] == ["2"])
        seen = len(versions)
        wait_until(lambda: len(versions) > seen + 20)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert failures == []
    assert set(versions[-20:]) == {"2"}  # once swapped, v2 only


def wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)
