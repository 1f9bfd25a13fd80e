"""The binary tensor extension and datatype rules on the wire: what a hand-built request gets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest

X = np.array([[0.01, 0.02, 0.015]], dtype=np.float32)
EXPECTED = 1 / (1 + np.exp(-(X.astype(np.float64) @ np.array([1.0, 0.5, -0.25]))))
PATH = "/v2/models/demo/infer"


@pytest.fixture(scope="module")
def client(stack: Any) -> Any:
    with httpx.Client(base_url=stack.url) as c:
        yield c


def binary_request(
    inputs: list[dict[str, Any]], blob: bytes, **doc: Any
) -> tuple[bytes, dict[str, str]]:
    head = json.dumps({"inputs": inputs, **doc}).encode()
    return head + blob, {"Inference-Header-Content-Length": str(len(head))}


def test_json_without_content_type_is_accepted(client: httpx.Client) -> None:
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": X[0].tolist()}]}
    )
    r = client.post(PATH, content=body.encode())
    assert "content-type" not in r.request.headers and r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["outputs"][0]["data"], EXPECTED, rtol=1e-5)


def test_binary_in_binary_out(client: httpx.Client) -> None:
    tensor = {
        "name": "input",
        "shape": [1, 3],
        "datatype": "FP32",
        "parameters": {"binary_data_size": 12},
    }
    body, headers = binary_request(
        [tensor], X.tobytes(), id="b", parameters={"binary_data_output": True}
    )
    r = client.post(
        PATH, content=body, headers={**headers, "content-type": "application/octet-stream"}
    )
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    doc = json.loads(r.content[:n])
    assert doc["id"] == "b" and "parameters" not in doc  # binary_data_output is the extension's
    (out,) = doc["outputs"]
    assert out["parameters"] == {"binary_data_size": 4} and "data" not in out
    np.testing.assert_allclose(np.frombuffer(r.content[n:], "<f4"), EXPECTED, rtol=1e-5)


@pytest.mark.parametrize(
    ("tensor", "blob", "headers", "status", "words"),
    [
        (
            {"binary_data_size": 8},
            X.tobytes()[:8],
            {},
            400,
            "does not fit shape [1, 3] of FP32 (12 bytes)",
        ),
        ({"binary_data_size": 16}, X.tobytes(), {}, 400, "runs past the body (12 bytes left)"),
        ({"binary_data_size": 12}, X.tobytes() + b"xx", {}, 400, "2 bytes after the JSON header"),
        ({"binary_data_size": -1}, X.tobytes(), {}, 400, "binary_data_size must be a non-negative"),
        (
            {"binary_data_size": 12},
            X.tobytes(),
            {"Inference-Header-Content-Length": "x"},
            400,
            "not a number",
        ),
        (
            {"binary_data_size": 12},
            X.tobytes(),
            {"Inference-Header-Content-Length": "99999"},
            400,
            "more than the body",
        ),
        (
            {"binary_data_size": 12},
            X.tobytes(),
            {"content-type": "text/plain"},
            415,
            "got text/plain",
        ),
    ],
)
def test_bad_binary_requests(
    client: httpx.Client,
    tensor: dict[str, Any],
    blob: bytes,
    headers: dict[str, str],
    status: int,
    words: str,
) -> None:
    t = {"name": "input", "shape": [1, 3], "datatype": "FP32", "parameters": tensor}
    body, h = binary_request([t], blob)
    r = client.post(PATH, content=body, headers={**h, **headers})
    assert r.status_code == status and words in r.json()["error"], r.text


def test_binary_size_without_the_header_and_octet_stream_without_it(client: httpx.Client) -> None:
    t = {
        "name": "input",
        "shape": [1, 3],
        "datatype": "FP32",
        "parameters": {"binary_data_size": 12},
    }
    r = client.post(PATH, json={"inputs": [t]})
    assert r.status_code == 400 and "no Inference-Header-Content-Length" in r.json()["error"]
    t["data"] = [1, 2, 3]
    body, h = binary_request([t], X.tobytes())
    r = client.post(PATH, content=body, headers=h)
    assert r.status_code == 400 and "both data and binary_data_size" in r.json()["error"]
    r = client.post(PATH, content=b"x", headers={"content-type": "application/octet-stream"})
    assert r.status_code == 415 and "with Inference-Header-Content-Length" in r.json()["error"]


@pytest.mark.parametrize(
    ("datatype", "data", "words"),
    [
        ("INT8", [1, 300, 2], "INT8 holds integers in [-128, 127], found 300"),
        ("UINT16", [1, -1, 2], "UINT16 holds integers in [0, 65535], found -1"),
        ("INT32", [1, 1.5, 2], "INT32 holds integers in [-2147483648, 2147483647], found 1.5"),
        ("FP16", [1, 70000.0, 2], "outside the FP16 range"),
        ("FP64", [1, 1e300, 2], "outside the float32 range"),
        ("FP8", [1, 2, 3], "'FP8' is no datatype"),
    ],
)
def test_json_values_must_fit_their_datatype(
    client: httpx.Client, datatype: str, data: list[Any], words: str
) -> None:
    t = {"name": "input", "shape": [1, 3], "datatype": datatype, "data": data}
    r = client.post(PATH, json={"inputs": [t]})
    assert r.status_code == 400 and "input 'input'" in r.json()["error"], r.text
    assert words in r.json()["error"], r.text


@pytest.mark.parametrize(
    ("outputs", "params", "words"),
    [
        (
            [{"name": "prediction", "parameters": {"binary_data": "yes"}}],
            {},
            "binary_data must be true or false",
        ),
        (
            [{"name": "prediction", "parameters": {"classification": 2}}],
            {},
            "classification extension",
        ),
        (None, {"binary_data_output": 1}, "binary_data_output must be true or false"),
    ],
)
def test_bad_output_parameters(
    client: httpx.Client, outputs: Any, params: dict[str, Any], words: str
) -> None:
    doc: dict[str, Any] = {
        "inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]
    }
    if outputs is not None:
        doc["outputs"] = outputs
    doc["parameters"] = params
    r = client.post(PATH, json=doc)
    assert r.status_code == 400 and words in r.json()["error"], r.text


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_binary_fp32_nan_or_infinite_is_refused_naming_the_tensor(
    client: httpx.Client, value: float
) -> None:
    x = X.copy()
    x[0, 1] = value
    tensor = {"name": "input", "shape": [1, 3], "datatype": "FP32"}
    body, headers = binary_request(
        [{**tensor, "parameters": {"binary_data_size": 12}}], x.tobytes()
    )
    r = client.post(PATH, content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert "input 'input'" in r.json()["error"] and "NaN and infinite" in r.json()["error"]


def test_binary_fp32_near_the_float32_limit_is_scored(client: httpx.Client) -> None:
    """Finite values whose sum overflows float32 are not refused for it."""
    big = np.finfo(np.float32).max
    x = np.array([[big, big, -1.0]], dtype=np.float32)
    tensor = {"name": "input", "shape": [1, 3], "datatype": "FP32"}
    body, headers = binary_request(
        [{**tensor, "parameters": {"binary_data_size": 12}}], x.tobytes()
    )
    r = client.post(PATH, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [pytest.approx(1.0)]
