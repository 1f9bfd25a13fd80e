"""MLflow's own scoring client, unchanged, against the gateway's /invocations: the answers of
the ONNX model, as onnxruntime computes them here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import requests
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

FEATURES = ["ret_1", "ret_5", "vol_20"]
X = np.array([[0.01, 0.02, 0.015], [-0.03, 0.0, 0.02], [0.2, -0.1, 0.05]], dtype=np.float32)


def onnx_answer(onnx_linear: Callable[..., bytes]) -> np.ndarray:
    session = ort.InferenceSession(onnx_linear([1.0, 0.5, -0.25], 0.0))  # the stack's v1
    return np.asarray(session.run(None, {"input": X})[0])


def test_scoring_server_client(stack: Any, onnx_linear: Callable[..., bytes]) -> None:
    host, port = stack.url.removeprefix("http://").split(":")
    client = ScoringServerClient(host, int(port))
    client.wait_server_ready(timeout=10)  # /ping
    result = client.invoke(pd.DataFrame(X, columns=FEATURES))
    frame = result.get_predictions()  # a DataFrame, as from `mlflow models serve`
    assert list(frame.columns) == ["prediction"]
    np.testing.assert_allclose(frame["prediction"], onnx_answer(onnx_linear), rtol=1e-6)


def test_requests_as_mlflow_documents(stack: Any, onnx_linear: Callable[..., bytes]) -> None:
    """The call MLflow's serving docs show: dataframe_split JSON posted with requests."""
    payload = {"dataframe_split": {"columns": FEATURES, "data": X.tolist()}}
    r = requests.post(stack.url + "/invocations", json=payload, timeout=10)
    assert r.status_code == 200, r.text
    got = [p["prediction"] for p in r.json()["predictions"]]  # the onnx flavor's records
    np.testing.assert_allclose(got, onnx_answer(onnx_linear), rtol=1e-6)
