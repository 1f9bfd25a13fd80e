"""`tradeloop up` from an empty project: trains, promotes, serves, and stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pytest
import tritonclient.grpc as tc

from tests.net import free_port
from tests.training.conftest import shrink
from tradeloop.templates import init_project

TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))


@pytest.mark.slow
def test_up_trains_promotes_serves_and_stops_gracefully(tmp_path: Path) -> None:
    spec = init_project(tmp_path / "proj", "upproj")
    shrink(spec)
    root = spec.parent
    port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))}
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen(
        [TRADELOOP, "up", "--port", str(port), "--grpc-port", str(grpc_port)],
        cwd=root,
        env=env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        ready = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            try:
                ready = httpx.get(f"{url}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert ready is not None and ready.status_code == 200, "never became ready"
        served = ready.json()["variants"]
        assert [(v["variant"], v["serving_version"]) for v in served] == [("champion", "1")]
        features = httpx.get(f"{url}/v2/models/upproj", timeout=5).json()["inputs"][0]["shape"]
        n = features[1]
        r = httpx.post(
            f"{url}/invocations",
            json={"inputs": [[0.001] * n]},
            headers={"x-request-id": "up-test-1"},
            timeout=5,
        )
        assert r.status_code == 200 and 0.0 <= r.json()["predictions"][0]["prediction"] <= 1.0
        # the same gateway over gRPC, from the same process (--grpc-port)
        with tc.InferenceServerClient(f"127.0.0.1:{grpc_port}") as client:
            x = tc.InferInput("input", [1, n], "FP32")
            x.set_data_from_numpy(np.full((1, n), 0.001, dtype=np.float32))
            answer = client.infer("upproj", [x], headers={"x-request-id": "up-test-2"})
        assert answer.as_numpy("prediction")[0] == pytest.approx(
            r.json()["predictions"][0]["prediction"], abs=1e-7
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        log.close()
    assert code == 0, (tmp_path / "up.log").read_text()[-3000:]
    # the graceful stop flushed the prediction log
    glob = root / ".tradeloop" / "predictions" / "**" / "*.parquet"
    rows = duckdb.sql(
        f"select version, variant from read_parquet('{glob}', hive_partitioning=true) "
        "where request_id in ('up-test-1', 'up-test-2')"
    ).fetchall()
    assert rows == [("1", "champion")] * 2
