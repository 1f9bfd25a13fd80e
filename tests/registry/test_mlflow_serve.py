"""A registered version is a real MLflow model: `mlflow models serve` serves it unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from tests.net import free_port

from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import ONNX_FILE, Registry
from tradeloop.training.pipeline import train

MLFLOW = str(Path(sys.executable).with_name("mlflow"))


@pytest.mark.slow
def test_mlflow_models_serve_answers_like_the_onnx_file(
    small_project: Path, tmp_path: Path
) -> None:
    p = Project.load(small_project)
    result = train(p)
    assert result.version is not None
    reg = Registry.for_project(p)
    (version,) = reg.versions(p.spec.name)
    session = ort.InferenceSession(str(reg.model_dir(version) / ONNX_FILE))
    rows = np.random.default_rng(3).normal(0, 0.02, (5, len(p.spec.feature_names)))
    rows = rows.astype(np.float32)
    expected = session.run(["prediction"], {"input": rows})[0].reshape(-1)

    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": p.mlflow_uri}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    uri = f"models:/{p.spec.name}/{result.version}"
    cmd = [MLFLOW, "models", "serve", "-m", uri, "--env-manager", "local"]
    log = (tmp_path / "mlflow-serve.log").open("wb")  # a file: a full pipe would stall it
    server = subprocess.Popen(
        [*cmd, "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "mlflow-serve.log").read_text()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not come up"
            time.sleep(0.5)
        payload = {"dataframe_split": {"columns": p.spec.feature_names, "data": rows.tolist()}}
        r = httpx.post(f"http://127.0.0.1:{port}/invocations", json=payload, timeout=30)
        assert r.status_code == 200, r.text
        got = [row["prediction"] for row in r.json()["predictions"]]
        np.testing.assert_allclose(got, expected, atol=1e-6)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
