"""MLflow's scoring protocol: the same answers as `mlflow models serve`, clear errors otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

FEATURES = ["ret_1", "ret_5", "vol_20"]
ROWS = [[0.01, 0.02, 0.015], [-0.03, 0.0, 0.02]]

PAYLOADS: dict[str, Any] = {
    "dataframe_split": {"dataframe_split": {"columns": FEATURES, "data": ROWS}},
    "dataframe_split reordered": {
        "dataframe_split": {
            "columns": ["vol_20", "ret_1", "ret_5"],
            "data": [[r[2], r[0], r[1]] for r in ROWS],
        }
    },
    "dataframe_split with index": {
        "dataframe_split": {"index": [7, 8], "columns": FEATURES, "data": ROWS}
    },
    "dataframe_records": {"dataframe_records": [dict(zip(FEATURES, r, strict=True)) for r in ROWS]},
    "instances records": {"instances": [dict(zip(FEATURES, r, strict=True)) for r in ROWS]},
    "inputs columnar": {"inputs": {n: [r[i] for r in ROWS] for i, n in enumerate(FEATURES)}},
    "with params": {"dataframe_split": {"columns": FEATURES, "data": ROWS}, "params": {"a": 1}},
}


@pytest.fixture
def url(stack: Any) -> str:
    return str(stack.url)


def post(url: str, body: Any = None, **kw: Any) -> httpx.Response:
    return (
        httpx.post(url + "/invocations", json=body, **kw)
        if body is not None
        else httpx.post(url + "/invocations", **kw)
    )


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_formats(url: str, name: str) -> None:
    r = post(url, PAYLOADS[name])
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert len(preds) == 2 and set(preds[0]) == {"prediction"}
    assert r.headers["x-tradeloop-model-version"] == "1"


def test_rows_in_model_order_are_accepted(url: str) -> None:
    """A superset of MLflow (which needs a tensor signature for these): plain rows."""
    for key in ("instances", "inputs"):
        assert post(url, {key: ROWS}).json() == post(url, PAYLOADS["dataframe_split"]).json()


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_csv(url: str, newline: str) -> None:
    body = newline.join(["ret_1,ret_5,vol_20", *(",".join(map(str, r)) for r in ROWS)]) + newline
    r = post(url, content=body, headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json() == post(url, PAYLOADS["dataframe_split"]).json()


def test_ping_and_health(url: str) -> None:
    for path in ("/ping", "/health"):
        r = httpx.get(url + path)
        assert (r.status_code, r.text, r.headers["content-type"]) == (200, "\n", "application/json")


@pytest.mark.parametrize(
    ("body", "headers", "status", "code", "words"),
    [
        (b"{bad", {"content-type": "application/json"}, 400, "BAD_REQUEST", "not valid JSON"),
        (b"[1, 2]", {"content-type": "application/json"}, 400, "BAD_REQUEST", "got a list"),
        (b'{"foo": 1}', {"content-type": "application/json"}, 400, "BAD_REQUEST", "exactly one of"),
        (
            b'{"instances": [], "inputs": []}',
            {"content-type": "application/json"},
            400,
            "BAD_REQUEST",
            "exactly one of",
        ),
        (
            b'{"dataframe_split": {"columns": ["ret_1", "ret_5"], "data": [[1, 2]]}}',
            {"content-type": "application/json"},
            400,
            "INVALID_PARAMETER_VALUE",
            "missing feature(s) ['vol_20']",
        ),
        (
            b'{"dataframe_records": [{"ret_1": 1, "ret_5": 2, "vol_20": 3, "zzz": 4}]}',
            {"content-type": "application/json"},
            400,
            "INVALID_PARAMETER_VALUE",
            "unknown feature(s) ['zzz']",
        ),
        (
            b'{"dataframe_records": [{"ret_1": "1", "ret_5": 2, "vol_20": 3}]}',
            {"content-type": "application/json"},
            400,
            "INVALID_PARAMETER_VALUE",
            "must be a number, got string",
        ),
        (
            b'{"dataframe_records": [{"ret_1": true, "ret_5": 2, "vol_20": 3}]}',
            {"content-type": "application/json"},
            400,
            "INVALID_PARAMETER_VALUE",
            "got boolean",
        ),
        (
            b'{"dataframe_records": [{"ret_1": null, "ret_5": 2, "vol_20": 3}]}',
            {"content-type": "application/json"},
            400,
            "INVALID_PARAMETER_VALUE",
            "got null",
        ),
        (
            b'{"dataframe_split": {"columns": ["ret_1", "ret_5", "vol_20"], "data": [[1, 2, 1e39]]}}',
            {"content-type": "application/json"},
            400,
            "INVALID_PARAMETER_VALUE",
            "float32 range",
        ),
        (
            b'{"dataframe_split": {"columns": ["ret_1", "ret_5", "vol_20"], "data": [[1, 2]]}}',
            {"content-type": "application/json"},
            400,
            "INVALID_PARAMETER_VALUE",
            "has 2 values, expected 3",
        ),
        (
            b'{"dataframe_split": {"columns": ["ret_1", "ret_1", "vol_20"], "data": [[1, 2, 3]]}}',
            {"content-type": "application/json"},
            400,
            "INVALID_PARAMETER_VALUE",
            "repeats",
        ),
        (
            b'{"dataframe_records": []}',
            {"content-type": "application/json"},
            400,
            "INVALID_PARAMETER_VALUE",
            "non-empty",
        ),
        (
            b'{"instances": [[1, 2, 3, 4]]}',
            {"content-type": "application/json"},
            400,
            "INVALID_PARAMETER_VALUE",
            "takes 3",
        ),
        (
            b"ret_1,ret_5,vol_20\n" + b"1" * 200_000 + b",2,3\n",
            {"content-type": "text/csv"},
            400,
            "BAD_REQUEST",
            "not valid CSV",
        ),
        (
            b"ret_1,ret_5,vol_20\n1,2,nan\n",
            {"content-type": "text/csv"},
            400,
            "INVALID_PARAMETER_VALUE",
            "NaN",
        ),
        (
            b"ret_1,ret_5,vol_20\n1,2,x\n",
            {"content-type": "text/csv"},
            400,
            "INVALID_PARAMETER_VALUE",
            "not a number",
        ),
        (
            b"x",
            {"content-type": "text/plain"},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "application/json or text/csv",
        ),
        (b"{}", {}, 415, "UNSUPPORTED_MEDIA_TYPE", "got 'none'"),
        (
            b"{}",
            {"content-type": "application/json; charset=latin-1"},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "UTF-8",
        ),
        (
            b"{}",
            {"content-type": "application/json; format=pandas-split"},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "format",
        ),
        (b"", {"content-type": "application/json"}, 400, "BAD_REQUEST", "empty"),
    ],
)
def test_bad_requests_name_the_problem(
    url: str, body: bytes, headers: dict[str, str], status: int, code: str, words: str
) -> None:
    r = post(url, content=body, headers=headers)
    assert r.status_code == status, r.text
    doc = r.json()
    assert doc["error_code"] == code and words in doc["message"], doc


@pytest.mark.slow
def test_same_answers_as_mlflows_own_server(url: str, tmp_path: Path, stack: Any) -> None:
    """The drop-in claim, checked against MLflow's scoring server on the same ONNX model."""
    pytest.importorskip("mlflow")
    import mlflow.onnx
    import onnx
    from mlflow.models import ModelSignature
    from mlflow.pyfunc import load_model, scoring_server
    from mlflow.types import ColSpec, Schema
    from starlette.testclient import TestClient

    art = stack.source.fetch("demo", "1")
    sig = ModelSignature(
        inputs=Schema([ColSpec("float", n) for n in FEATURES]),
        outputs=Schema([ColSpec("float", "prediction")]),
    )
    mlflow.onnx.save_model(
        onnx.load_from_string(art.onnx_bytes),
        str(tmp_path / "m"),
        signature=sig,
        pip_requirements=["onnxruntime"],
    )
    reference = TestClient(scoring_server.init(load_model(str(tmp_path / "m"))))
    for name, payload in PAYLOADS.items():
        theirs, ours = reference.post("/invocations", json=payload), post(url, payload)
        assert theirs.status_code == ours.status_code == 200, name
        assert _close(ours.json(), theirs.json()), name
    csv = "ret_1,ret_5,vol_20\n1,2,3\n"
    theirs = reference.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    ours = post(url, content=csv, headers={"content-type": "text/csv"})
    assert _close(ours.json(), theirs.json())
    bad = reference.post(
        "/invocations", content=b"{bad", headers={"content-type": "application/json"}
    )
    mine = post(url, content=b"{bad", headers={"content-type": "application/json"})
    assert bad.status_code == mine.status_code == 400
    assert bad.json()["error_code"] == mine.json()["error_code"] == "BAD_REQUEST"


def _close(a: dict[str, Any], b: dict[str, Any]) -> bool:
    pa = [p["prediction"] for p in a["predictions"]]
    pb = [p["prediction"] for p in b["predictions"]]
    return pa == pytest.approx(pb, rel=1e-6)


def test_large_batches_are_scored_off_the_event_loop(url: str) -> None:
    rows = [[i / 1000, -i / 2000, 0.01] for i in range(5000)]  # ~100 KB: the worker-thread path
    r = post(url, {"dataframe_split": {"columns": FEATURES, "data": rows}})
    assert r.status_code == 200, r.text
    preds = [p["prediction"] for p in r.json()["predictions"]]
    assert len(preds) == 5000 and preds[0] < preds[-1]
    v2 = httpx.post(
        url + "/v2/models/demo/infer",
        json={"inputs": [{"name": "input", "shape": [5000, 3], "datatype": "FP32", "data": rows}]},
    )
    assert v2.json()["outputs"][0]["data"] == pytest.approx(preds, rel=1e-6)
