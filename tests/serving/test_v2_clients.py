"""The Open Inference Protocol as its own clients speak it: tritonclient[http] and the kserve
SDK's InferenceRESTClient, unmodified and with their default arguments, against the live
gateway. Every answer is checked against the ONNX model run by onnxruntime here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

X = np.array([[0.01, 0.02, 0.015], [-0.03, 0.0, 0.02]], dtype=np.float32)
WEIGHTS = {"1": ([1.0, 0.5, -0.25], 0.0), "2": ([-1.0, 0.25, 0.5], 0.1)}  # conftest's models
INTS = np.array([[1, 2, 3], [4, 0, 2]])


@pytest.fixture(scope="module")
def host(stack: Any) -> str:
    return str(stack.url).removeprefix("http://")


@pytest.fixture
def expected(onnx_linear: Callable[..., bytes]) -> Callable[[np.ndarray, str], np.ndarray]:
    """What onnxruntime answers for `x` with version `v`'s ONNX model."""

    def run(x: np.ndarray, version: str = "1") -> np.ndarray:
        w, b = WEIGHTS[version]
        session = ort.InferenceSession(onnx_linear(w, b), providers=["CPUExecutionProvider"])
        return np.asarray(session.run(None, {"input": x.astype(np.float32)})[0])

    return run


@pytest.fixture
def tc(host: str) -> Any:
    client = triton.InferenceServerClient(url=host)
    yield client
    client.close()


def test_tritonclient_health_and_metadata(tc: Any) -> None:
    assert tc.is_server_live() and tc.is_server_ready() and tc.is_model_ready("demo")
    assert tc.is_model_ready("demo", model_version="2")
    assert "binary_tensor_data" in tc.get_server_metadata()["extensions"]
    meta = tc.get_model_metadata("demo")
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 3]}]
    assert meta["outputs"] == [{"name": "prediction", "datatype": "FP32", "shape": [-1]}]
    assert tc.get_model_metadata("demo", model_version="2")["parameters"]["version"] == "2"


def test_tritonclient_binary_infer_by_default(tc: Any, expected: Any) -> None:
    inp = triton.InferInput("input", list(X.shape), "FP32")
    inp.set_data_from_numpy(X)  # binary_data=True, and no outputs: binary_data_output
    result = tc.infer("demo", [inp], request_id="r-1")
    assert result.get_response()["id"] == "r-1"
    out = result.as_numpy("prediction")
    assert out.dtype == np.float32 and out.shape == (2,)
    np.testing.assert_allclose(out, expected(X), rtol=1e-6)


def test_tritonclient_json_infer(tc: Any, expected: Any) -> None:
    inp = triton.InferInput("input", list(X.shape), "FP32")
    inp.set_data_from_numpy(X, binary_data=False)
    outputs = [triton.InferRequestedOutput("prediction", binary_data=False)]
    result = tc.infer("demo", [inp], outputs=outputs, parameters={"trace": "abc"})
    response = result.get_response()
    assert response["outputs"][0]["data"] and response["parameters"] == {"trace": "abc"}
    np.testing.assert_allclose(result.as_numpy("prediction"), expected(X), rtol=1e-6)


def test_tritonclient_version_route_and_per_feature_tensors(tc: Any, expected: Any) -> None:
    inputs = []
    for i, name in enumerate(["vol_20", "ret_1", "ret_5"]):  # any order: named features
        col = {"ret_1": 0, "ret_5": 1, "vol_20": 2}[name]
        inp = triton.InferInput(name, [2], "FP64")
        inp.set_data_from_numpy(X[:, col].astype(np.float64), binary_data=i != 1)  # mixed
        inputs.append(inp)
    result = tc.infer("demo", inputs, model_version="2")
    assert result.get_response()["model_version"] == "2"
    np.testing.assert_allclose(result.as_numpy("prediction"), expected(X, "2"), rtol=1e-6)


@pytest.mark.parametrize(
    "datatype",
    ["INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP64"],
)
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_every_number_datatype_converts(
    tc: Any, expected: Any, datatype: str, binary: bool
) -> None:
    from tritonclient.utils import triton_to_np_dtype

    x = INTS.astype(triton_to_np_dtype(datatype))
    inp = triton.InferInput("input", list(x.shape), datatype)
    if datatype == "FP16" and not binary:  # tritonclient refuses FP16 as JSON; send it by hand
        inp._data = x.reshape(-1).tolist()  # what set_data_from_numpy would have put there
    else:
        inp.set_data_from_numpy(x, binary_data=binary)
    out = tc.infer("demo", [inp]).as_numpy("prediction")
    np.testing.assert_allclose(out, expected(INTS.astype(np.float32)), rtol=1e-6)


@pytest.mark.parametrize(
    ("datatype", "data"),
    [("BOOL", np.array([[True, False, True]])), ("BYTES", np.array([[b"1", b"2", b"3"]]))],
)
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_bool_and_bytes_are_refused_naming_the_tensor(
    tc: Any, datatype: str, data: np.ndarray, binary: bool
) -> None:
    inp = triton.InferInput("input", list(data.shape), datatype)
    inp.set_data_from_numpy(data.astype(object) if datatype == "BYTES" else data, binary)
    with pytest.raises(InferenceServerException) as err:
        tc.infer("demo", [inp])
    assert err.value.status() == "400"
    assert f"input 'input': '{datatype}' is a datatype the model cannot take" in str(err.value)


# The kserve SDK registers KServe's grpc_predict_v2.proto in protobuf's default pool, and
# tritonclient[grpc] (the gRPC tests) registers Triton's, both as package `inference`: one
# process cannot import both. So the kserve client runs in a fresh interpreter.
KSERVE_SESSION = """
import asyncio, json, sys
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput

url, X = sys.argv[1], np.array(json.loads(sys.argv[2]), dtype=np.float32)

async def session():
    async with InferenceRESTClient(RESTConfig(protocol="v2")) as client:
        out = {
            "live": await client.is_server_live(url),
            "ready": await client.is_server_ready(url),
            "model_ready": await client.is_model_ready(url, "demo"),
        }
        as_json = await client.infer(
            url,
            InferRequest("demo", [InferInput("input", list(X.shape), "FP32", X)], "k-1"),
            model_name="demo",
        )
        inp = InferInput("input", list(X.shape), "FP32")
        inp.set_data_from_numpy(X)  # binary_data=True
        headers = {}
        binary = await client.infer(
            url,
            InferRequest(
                "demo", [inp], request_outputs=[RequestedOutput("prediction", {"binary_data": True})]
            ),
            model_name="demo",
            response_headers=headers,
        )
        out.update(
            id=as_json.id,
            model_name=as_json.model_name,
            json_out=as_json.outputs[0].as_numpy().tolist(),
            binary_out=binary.outputs[0].as_numpy().tolist(),
            headers={k.lower(): v for k, v in headers.items()},
        )
        return out

print(json.dumps(asyncio.run(session())))
"""


def test_kserve_rest_client(stack: Any, expected: Any) -> None:
    """InferenceRESTClient with its defaults, but for the v2 protocol (its default is v1)."""
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", KSERVE_SESSION, str(stack.url), json.dumps(X.tolist())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["live"] and got["ready"] and got["model_ready"]
    assert got["id"] == "k-1" and got["model_name"] == "demo"
    np.testing.assert_allclose(np.array(got["json_out"]), expected(X), rtol=1e-6)
    # a binary answer: the JSON's length in the header, then 2 float32 values after it
    headers = got["headers"]
    assert headers["content-type"] == "application/octet-stream"
    assert int(headers["inference-header-content-length"]) + 8 == int(headers["content-length"])
    np.testing.assert_allclose(np.array(got["binary_out"]), expected(X), rtol=1e-6)
