"""The gRPC binding of the Open Inference Protocol, driven by tritonclient's own gRPC client.

The gateway runs under uvicorn on loopback with gRPC on a free port in the same process;
answers are compared with onnxruntime run directly on the same ONNX bytes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import grpc
import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as tc
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

MODEL = "demo"
FEATURES = ["ret_1", "ret_5", "vol_20"]
X = np.array([[0.01, 0.02, 0.015], [-1.5, 2.0, 0.25], [3.0, -0.5, 1.0]], dtype=np.float32)


def reference(stack: Any, version: str, x: np.ndarray) -> np.ndarray:
    """onnxruntime's own answer for `x` from the version's stored ONNX bytes."""
    art = stack.source.fetch(MODEL, version)
    sess = ort.InferenceSession(art.onnx_bytes, providers=["CPUExecutionProvider"])
    out: np.ndarray = sess.run(["prediction"], {"input": x.astype(np.float32)})[0]
    return out.reshape(-1)


@pytest.fixture(scope="module")
def address(grpc_stack: Any) -> str:
    return f"127.0.0.1:{grpc_stack.app.state.grpc.port}"


@pytest.fixture(scope="module")
def client(address: str) -> Iterator[tc.InferenceServerClient]:
    c = tc.InferenceServerClient(address)
    yield c
    c.close()


@pytest.fixture(scope="module")
def stub(address: str) -> Iterator[Any]:
    """tritonclient's generated stub, for requests its high-level client never sends."""
    with grpc.insecure_channel(address) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def tensor(name: str, x: np.ndarray, datatype: str = "FP32") -> tc.InferInput:
    t = tc.InferInput(name, list(x.shape), datatype)
    t.set_data_from_numpy(x)
    return t


def code_and_message(exc: InferenceServerException) -> tuple[str | None, str]:
    return exc.status(), exc.message()


# ------------------------------------------------------------------------------ health, metadata


def test_health(client: tc.InferenceServerClient) -> None:
    assert client.is_server_live() is True
    assert client.is_server_ready() is True
    assert client.is_model_ready(MODEL) is True
    assert client.is_model_ready(MODEL, "2") is True  # the shadow variant's version
    with pytest.raises(InferenceServerException) as err:
        client.is_model_ready(MODEL, "9")
    assert code_and_message(err.value) == (
        "StatusCode.NOT_FOUND",
        "version '9' of 'demo' is not being served",
    )


def test_metadata(client: tc.InferenceServerClient) -> None:
    server = client.get_server_metadata(as_json=True)
    assert server["name"] == "tradeloop" and server["version"]
    meta = client.get_model_metadata(MODEL, as_json=True)
    assert meta["name"] == MODEL and meta["versions"] == ["1", "2"]
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": ["-1", "3"]}]
    assert meta["outputs"] == [{"name": "prediction", "datatype": "FP32", "shape": ["-1"]}]
    with pytest.raises(InferenceServerException) as err:
        client.get_model_metadata("other")
    assert code_and_message(err.value) == (
        "StatusCode.NOT_FOUND",
        "unknown model 'other'; this gateway serves 'demo'",
    )


# ------------------------------------------------------------------------------ infer


def test_infer_raw_equals_onnxruntime(grpc_stack: Any, client: tc.InferenceServerClient) -> None:
    result = client.infer(MODEL, [tensor("input", X)], request_id="req-7")
    got = result.as_numpy("prediction")
    assert got.dtype == np.float32 and got.shape == (3,)
    np.testing.assert_array_equal(got, reference(grpc_stack, "1", X))
    response = result.get_response()
    assert (response.model_name, response.model_version, response.id) == (MODEL, "1", "req-7")
    assert len(response.raw_output_contents) == 1  # raw in, raw out, as Triton answers


def test_infer_one_tensor_per_feature_any_number_type(
    grpc_stack: Any, client: tc.InferenceServerClient
) -> None:
    cols = [
        tensor("vol_20", X[:, 2].astype(np.float64), "FP64"),  # out of the model's order
        tensor("ret_1", X[:, 0].astype(np.float16), "FP16"),
        tensor("ret_5", X[:, 1:2].copy(), "FP32"),  # [N, 1]
    ]
    got = client.infer(MODEL, cols).as_numpy("prediction")
    expected_x = np.stack([X[:, 0].astype(np.float16).astype(np.float32), X[:, 1], X[:, 2]], axis=1)
    np.testing.assert_array_equal(got, reference(grpc_stack, "1", expected_x))
    ints = np.array([[1, -2, 3]], dtype=np.int64)
    got = client.infer(MODEL, [tensor("input", ints, "INT64")]).as_numpy("prediction")
    np.testing.assert_array_equal(got, reference(grpc_stack, "1", ints.astype(np.float32)))


def test_infer_typed_contents_answers_typed(grpc_stack: Any, stub: Any) -> None:
    request = service_pb2.ModelInferRequest(model_name=MODEL, id="typed")
    t = request.inputs.add(name="input", datatype="FP64", shape=list(X.shape))
    t.contents.fp64_contents.extend(X.astype(np.float64).ravel().tolist())
    request.outputs.add(name="prediction")
    response, call = stub.ModelInfer.with_call(request, metadata=[("x-request-id", "t-1")])
    trailing = dict(call.trailing_metadata())
    assert trailing["x-request-id"] == "t-1"  # as the HTTP side's response headers say
    assert (trailing["x-tradeloop-variant"], trailing["x-tradeloop-model-version"]) == (
        "champion",
        "1",
    )
    assert not response.raw_output_contents
    (out,) = response.outputs
    assert (out.name, out.datatype, list(out.shape)) == ("prediction", "FP32", [3])
    np.testing.assert_array_equal(
        np.array(out.contents.fp32_contents, dtype=np.float32), reference(grpc_stack, "1", X)
    )


def test_infer_a_large_batch_off_the_event_loop(
    grpc_stack: Any, client: tc.InferenceServerClient
) -> None:
    big = np.random.default_rng(3).normal(size=(20_000, 3)).astype(np.float32)  # 240 kB
    got = client.infer(MODEL, [tensor("input", big)]).as_numpy("prediction")
    np.testing.assert_array_equal(got, reference(grpc_stack, "1", big))
    assert client.is_server_live()


def test_version_scoped_infer_reaches_that_variant(
    grpc_stack: Any, client: tc.InferenceServerClient
) -> None:
    result = client.infer(MODEL, [tensor("input", X)], model_version="2")
    assert result.get_response().model_version == "2"
    np.testing.assert_array_equal(result.as_numpy("prediction"), reference(grpc_stack, "2", X))


def test_shares_metrics_and_prediction_log_with_http(
    grpc_stack: Any, client: tc.InferenceServerClient
) -> None:
    client.infer(MODEL, [tensor("input", X[:1])], request_id="x", headers={"x-request-id": "g-42"})
    text = httpx.get(grpc_stack.url + "/metrics").text
    assert (
        'tradeloop_requests_total{model="demo",route="/inference.GRPCInferenceService/ModelInfer",'
        'status="200",variant="champion",version="1"}'
    ) in text
    rows = wait_for_log(grpc_stack.state, "g-42")
    # the live answer and the shadow variant's, as over HTTP
    assert sorted((r[1], r[2], r[3]) for r in rows) == [
        ("/inference.GRPCInferenceService/ModelInfer", "challenger", "shadow"),
        ("/inference.GRPCInferenceService/ModelInfer", "champion", "live"),
    ]


def wait_for_log(state: Path, request_id: str, want: int = 2) -> list[tuple[Any, ...]]:
    glob = state / "predictions" / "**" / "*.parquet"
    deadline = time.monotonic() + 10
    while True:
        rows: list[tuple[Any, ...]] = []
        if list((state / "predictions").rglob("*.parquet")):
            rows = duckdb.sql(
                f"select request_id, route, variant, mode from read_parquet('{glob}', "
                f"hive_partitioning=true) where request_id = '{request_id}'"
            ).fetchall()
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            [tensor("input", X.ravel())],
            "input 'input': shape must be [N, n_features], got [9]",
        ),
        (
            [tensor("input", np.array([[np.nan, 1.0, 2.0]], dtype=np.float32))],
            "input 'input': NaN and infinite values are not allowed",
        ),
        (
            [tensor("input", np.array([[1e300, 1.0, 2.0]]), "FP64")],
            "input 'input': a value is outside the float32 range",
        ),
        (
            [tensor("input", np.array([["a", "b", "c"]], dtype=np.object_), "BYTES")],
            "input 'input': datatype 'BYTES' is not a number type",
        ),
        ([tensor("input", X[:, :2].copy())], "rows have 2 values; the model takes 3"),
        (
            [tensor("ret_1", X[:, 0].copy()), tensor("ret_5", X[:, 1].copy())],
            "missing feature(s) ['vol_20']",
        ),
        (
            [tensor(n, X[:, i % 3].copy()) for i, n in enumerate([*FEATURES, "nope"])],
            "unknown feature(s) ['nope']",
        ),
    ],
)
def test_bad_tensors_are_invalid_argument_naming_them(
    client: tc.InferenceServerClient, inputs: list[tc.InferInput], message: str
) -> None:
    with pytest.raises(InferenceServerException) as err:
        client.infer(MODEL, inputs)
    assert err.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert message in err.value.message()


def test_malformed_requests(stub: Any) -> None:
    cases: list[tuple[Any, str]] = []
    r = service_pb2.ModelInferRequest(model_name=MODEL)
    r.inputs.add(name="input", datatype="FP32", shape=[1, 3])
    r.raw_input_contents.append(b"\0" * 8)
    cases.append((r, "input 'input': shape [1, 3] of FP32 needs 12 raw bytes, got 8"))
    r = service_pb2.ModelInferRequest(model_name=MODEL)
    r.inputs.add(name="input", datatype="FP32", shape=[1, 3])
    cases.append((r, "input 'input': shape [1, 3] holds 3 values, contents.fp32_contents has 0"))
    r = service_pb2.ModelInferRequest(model_name=MODEL)
    cases.append((r, "the request has no inputs"))
    r = service_pb2.ModelInferRequest(model_name=MODEL)
    r.inputs.add(name="input", datatype="FP32", shape=[1, 3]).contents.fp32_contents.extend(
        [1, 2, 3]
    )
    r.outputs.add(name="label")
    cases.append((r, "unknown output 'label'; the model has one output, 'prediction'"))
    r = service_pb2.ModelInferRequest(model_name=MODEL)
    r.inputs.add(name="input", datatype="FP16", shape=[1, 3])
    cases.append((r, "input 'input': FP16 data must come in raw_input_contents"))
    r = service_pb2.ModelInferRequest(model_name=MODEL)
    r.inputs.add(name="input", datatype="FP32", shape=[-1, 3])
    cases.append((r, "input 'input': shape [-1, 3] has a negative dimension"))
    for request, message in cases:
        with pytest.raises(grpc.RpcError) as err:
            stub.ModelInfer(request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, message
        assert message in err.value.details()


def test_unknown_model_and_version_are_not_found(client: tc.InferenceServerClient) -> None:
    for model, version, message in [
        ("other", "", "unknown model 'other'; this gateway serves 'demo'"),
        (MODEL, "7", "version '7' of 'demo' is not being served"),
    ]:
        with pytest.raises(InferenceServerException) as err:
            client.infer(model, [tensor("input", X)], model_version=version)
        assert code_and_message(err.value) == ("StatusCode.NOT_FOUND", message)


def test_oversized_message_is_resource_exhausted(
    grpc_stack: Any, client: tc.InferenceServerClient
) -> None:
    limit = grpc_stack.app.state.gateway.serving.max_body_bytes
    big = np.zeros((limit // 12 + 1, 3), dtype=np.float32)
    with pytest.raises(InferenceServerException) as err:
        client.infer(MODEL, [tensor("input", big)])
    assert err.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
    assert client.is_server_live()  # and the server carries on


# ------------------------------------------------------------------------------ tokens


def test_tokens_travel_as_authorization_metadata(
    make_app: Any, live: Any, deployer: Any, store: Any
) -> None:
    from tradeloop.security.tokens import create_token
    from tradeloop.spec import ServingSpec

    deployer(("champion", "1", "live", 90), ("challenger", "2", "live", 10))
    app = make_app(serving=ServingSpec(require_token=True), grpc_port=0)
    live(app)
    tokens = {r: create_token(store, f"t-{r}", r)[0] for r in ("viewer", "predictor", "operator")}
    with tc.InferenceServerClient(f"127.0.0.1:{app.state.grpc.port}") as client:

        def infer(token: str | None, **headers: str) -> Any:
            if token is not None:
                headers["authorization"] = f"Bearer {token}"
            return client.infer(MODEL, [tensor("input", X)], headers=headers)

        for token, code, message in [
            (None, "UNAUTHENTICATED", "this endpoint needs a bearer token (predictor or higher)"),
            ("tl_wrong", "UNAUTHENTICATED", "the token is unknown or revoked"),
            (tokens["viewer"], "PERMISSION_DENIED", "token 't-viewer' has role viewer"),
        ]:
            with pytest.raises(InferenceServerException) as err:
                infer(token)
            assert err.value.status() == f"StatusCode.{code}"
            assert message in err.value.message()
        assert infer(tokens["predictor"]).as_numpy("prediction").shape == (3,)
        # forcing a variant bypasses the traffic split: operators only, as over HTTP
        with pytest.raises(InferenceServerException) as err:
            infer(tokens["predictor"], **{"x-tradeloop-variant": "challenger"})
        assert err.value.status() == "StatusCode.PERMISSION_DENIED"
        forced = infer(tokens["operator"], **{"x-tradeloop-variant": "challenger"})
        assert forced.get_response().model_version == "2"
        assert client.is_server_ready()  # health stays open
