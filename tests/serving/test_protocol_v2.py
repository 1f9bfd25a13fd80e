"""The Open Inference Protocol (KServe v2): health, metadata and infer, errors as {"error"}."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

FEATURES = ["ret_1", "ret_5", "vol_20"]
ROWS = [[0.01, 0.02, 0.015], [-0.03, 0.0, 0.02]]
EXPECTED_V1 = 1 / (1 + np.exp(-(np.array(ROWS) @ np.array([1.0, 0.5, -0.25]))))


@pytest.fixture(scope="module")
def client(stack: Any) -> Any:
    with httpx.Client(base_url=stack.url) as c:
        yield c


def infer(client: httpx.Client, body: Any, path: str = "/v2/models/demo/infer") -> httpx.Response:
    return client.post(path, json=body)


def test_health_and_server_metadata(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2").json()
    assert meta["name"] == "tradeloop" and meta["extensions"] == ["binary_tensor_data"]


def test_model_metadata(client: httpx.Client) -> None:
    meta = client.get("/v2/models/demo").json()
    assert meta["name"] == "demo" and meta["platform"] == "onnxruntime_onnx"
    assert meta["versions"] == ["1", "2"]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 3]}]
    assert meta["outputs"] == [{"name": "prediction", "datatype": "FP32", "shape": [-1]}]
    assert meta["parameters"]["feature_names"] == FEATURES
    assert client.get("/v2/models/demo/ready").json() == {"name": "demo", "ready": True}
    assert client.get("/v2/models/demo/versions/2").json()["parameters"]["variant"] == "challenger"
    assert client.get("/v2/models/demo/versions/2/ready").json()["ready"] is True


@pytest.mark.parametrize(
    "inputs",
    [
        [
            {
                "name": "input",
                "shape": [2, 3],
                "datatype": "FP32",
                "data": [v for r in ROWS for v in r],
            }
        ],
        [{"name": "input", "shape": [2, 3], "datatype": "FP64", "data": ROWS}],
        [
            {"name": n, "shape": [2], "datatype": "FP32", "data": [r[i] for r in ROWS]}
            for i, n in enumerate(FEATURES)
        ],
        [
            {"name": n, "shape": [2, 1], "datatype": "FP32", "data": [[r[i]] for r in ROWS]}
            for i, n in reversed(list(enumerate(FEATURES)))
        ],
    ],
    ids=["input-flat", "input-nested", "per-feature", "per-feature-columns-reordered"],
)
def test_infer_forms(client: httpx.Client, inputs: list[dict[str, Any]]) -> None:
    r = infer(client, {"id": "abc", "inputs": inputs, "outputs": [{"name": "prediction"}]})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["model_name"], doc["model_version"], doc["id"]) == ("demo", "1", "abc")
    (out,) = doc["outputs"]
    assert (out["name"], out["datatype"], out["shape"]) == ("prediction", "FP32", [2])
    np.testing.assert_allclose(out["data"], EXPECTED_V1, rtol=1e-5)


def test_versioned_infer_uses_that_version(client: httpx.Client) -> None:
    body = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": ROWS[0]}]}
    assert infer(client, body, "/v2/models/demo/versions/2/infer").json()["model_version"] == "2"
    r = infer(client, body, "/v2/models/demo/versions/9/infer")
    assert r.status_code == 404 and "not being served" in r.json()["error"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "inputs must be a non-empty array"),
        (
            {
                "inputs": [
                    {"name": "input", "shape": [1, 3], "datatype": "BYTES", "data": ["a", "b", "c"]}
                ]
            },
            "cannot take",
        ),
        (
            {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2]}]},
            "holds 3 values, data has 2",
        ),
        (
            {
                "inputs": [
                    {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
                ]
            },
            "model takes 3",
        ),
        (
            {"inputs": [{"name": "input", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]}]},
            "[N, n_features]",
        ),
        (
            {
                "inputs": [
                    {"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, "x", 3]}
                ]
            },
            "numbers only",
        ),
        (
            {
                "inputs": [
                    {"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 1e39, 3]}
                ]
            },
            "float32 range",
        ),
        ({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32"}]}, "missing ['data']"),
        (
            {"inputs": [{"name": "ret_1", "shape": [1], "datatype": "FP32", "data": [1]}]},
            "missing feature(s)",
        ),
        (
            {
                "inputs": [
                    {"name": n, "shape": [1], "datatype": "FP32", "data": [1]}
                    for n in [*FEATURES, "zzz"]
                ]
            },
            "unknown feature(s) ['zzz']",
        ),
        (
            {
                "inputs": [
                    {"name": "ret_1", "shape": [2], "datatype": "FP32", "data": [1, 2]},
                    {"name": "ret_5", "shape": [1], "datatype": "FP32", "data": [1]},
                ]
            },
            "same, non-zero N",
        ),
        (
            {
                "inputs": [
                    {"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}
                ],
                "outputs": [{"name": "proba"}],
            },
            "unknown output",
        ),
        ({"id": 5, "inputs": []}, "id must be a string"),
    ],
)
def test_bad_requests(client: httpx.Client, body: Any, words: str) -> None:
    r = infer(client, body)
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error"} and words in r.json()["error"], r.json()


def test_unknown_model_and_transport_errors(client: httpx.Client) -> None:
    r = client.get("/v2/models/other")
    assert r.status_code == 404 and "unknown model 'other'" in r.json()["error"]
    r = client.post(
        "/v2/models/demo/infer", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = client.post("/v2/models/demo/infer", content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    r = client.get("/v2/models/demo/infer")
    assert r.status_code == 405 and "error" in r.json()
