"""Serving: tradeloop's gateway vs `mlflow models serve` on the same registered model.

The same trained model is served three ways, one process each on loopback: MLflow's scoring
server with the `onnx` flavor, MLflow's with the native LightGBM flavor (the same parameters refit
on the same rows), and `tradeloop serve` (routing, prediction log and metrics on). The same
single-row `/invocations` payload (`dataframe_split`) is driven by wrk at 8 connections, then a
1,000-row payload gives rows/s. Targets: >= 4x the onnx flavor's req/s, >= 25x the LightGBM
flavor's, p99 <= 5 ms, 0 errors, >= 200,000 rows/s.

    .venv/bin/python bench/serving.py [--duration 10] [--quick]
    .venv/bin/python bench/serving.py --tracing [--quick]   # tracing off vs 1% sampled

Needs wrk (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

VENV_BIN = Path(sys.executable).parent
WRK_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("{body}"):read("*a")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def prepare(tmp: Path) -> tuple[Path, dict[str, str], list[str], np.ndarray]:
    """A trained, registered, deployed project plus a native LightGBM twin of the model."""
    import mlflow
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    from tradeloop.data.source import checked_bars
    from tradeloop.project import Project
    from tradeloop.store import deployments as dep
    from tradeloop.templates import init_project
    from tradeloop.training.adapters import make_adapter
    from tradeloop.training.dataset import training_frame, xy
    from tradeloop.training.pipeline import train

    spec_path = init_project(tmp / "proj", "bench")
    project = Project.load(spec_path)
    result = train(project)
    if result.version is None:
        raise RuntimeError(f"gates failed: {result.gates['failed']}")
    dep.apply(
        project.store,
        "bench",
        [dep.Deployed("bench", "champion", result.version, "live", 100)],
        actor="bench",
        reason="bench",
    )
    spec = project.spec
    bars, _ = checked_bars(spec.data, project.root)
    frame = training_frame(bars, spec)
    X, y, _ = xy(frame, spec.feature_names)
    native = make_adapter(spec.model, seed=spec.training.seed).fit(X, y)
    uri = project.mlflow_uri
    mlflow.set_tracking_uri(uri)
    sig = ModelSignature(inputs=Schema([ColSpec("float", n) for n in spec.feature_names]))
    with mlflow.start_run(
        experiment_id=mlflow.create_experiment(
            "bench-lgbm", artifact_location=Path(project.mlflow_artifacts).as_uri()
        )
    ):
        mlflow.lightgbm.log_model(
            native.model_,
            name="model",
            signature=sig,
            registered_model_name="bench-lgbm",
            pip_requirements=["lightgbm", "mlflow"],
        )
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return project.root, env, spec.feature_names, X


def wrk(url: str, body: Path, duration: int, connections: int = 8) -> dict[str, float]:
    lua = body.with_suffix(".lua")
    lua.write_text(WRK_LUA.format(body=body))
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(lua), url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if sock:
        errors += sum(int(g) for g in sock.groups())
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": ms("50%"),
        "p99": ms("99%"),
        "errors": errors,
    }


def run_server(
    cmd: list[str], env: dict[str, str], cwd: Path, port: int, ready: str
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_ready(f"http://127.0.0.1:{port}{ready}")
    return proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="3 s per run")
    ap.add_argument(
        "--tracing", action="store_true", help="only: tradeloop with tracing off vs 1%% sampled"
    )
    args = ap.parse_args()
    duration = 3 if args.quick else args.duration
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
        f"wrk -t2 -c8 -d{duration}s, one server process each"
    )
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        root, env, features, X = prepare(tmp)
        one = tmp / "one.json"
        one.write_text(
            json.dumps({"dataframe_split": {"columns": features, "data": X[:1].tolist()}})
        )
        batch = tmp / "batch.json"
        batch.write_text(
            json.dumps({"dataframe_split": {"columns": features, "data": X[:1000].tolist()}})
        )
        if args.tracing:
            from bench_tracing import tracing_rows

            tracing_rows(root, env, one, duration, wrk, run_server, free_port)
            return
        servers = {
            "mlflow serve (onnx flavor)": (
                [
                    "mlflow",
                    "models",
                    "serve",
                    "-m",
                    "models:/bench/1",
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                ],
                "/ping",
            ),
            "mlflow serve (lightgbm flavor)": (
                [
                    "mlflow",
                    "models",
                    "serve",
                    "-m",
                    "models:/bench-lgbm/1",
                    "--env-manager",
                    "local",
                    "-h",
                    "127.0.0.1",
                    "-p",
                ],
                "/ping",
            ),
            "tradeloop serve": (
                [str(VENV_BIN / "tradeloop"), "serve", "--host", "127.0.0.1", "--port"],
                "/readyz",
            ),
        }
        results: dict[str, dict[str, float]] = {}
        for name, (cmd, ready) in servers.items():
            port = free_port()
            proc = run_server([*cmd, str(port)], env, root, port, ready)
            try:
                url = f"http://127.0.0.1:{port}/invocations"
                wrk(url, one, 1)  # warm up
                r = wrk(url, one, duration)
                b = wrk(url, batch, duration)
                r["rows_per_s"] = b["rps"] * 1000
                r["batch_errors"] = b["errors"]
                results[name] = r
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    print(f"\n{'server':<32}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'rows/s':>12}")
    for name, r in results.items():
        print(
            f"{name:<32}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}"
            f"{r['errors'] + r['batch_errors']:>8.0f}{r['rows_per_s']:>12.0f}"
        )
    ours = results["tradeloop serve"]
    onnx_x = ours["rps"] / max(results["mlflow serve (onnx flavor)"]["rps"], 1e-9)
    lgbm_x = ours["rps"] / max(results["mlflow serve (lightgbm flavor)"]["rps"], 1e-9)
    print(f"\ntradeloop vs onnx flavor: {onnx_x:.1f}x (target >= 4x)")
    print(f"tradeloop vs lightgbm flavor: {lgbm_x:.1f}x (target >= 25x)")
    print(
        f"tradeloop p99 {ours['p99']:.2f} ms (target <= 5 ms); errors "
        f"{ours['errors'] + ours['batch_errors']:.0f} (target 0); batch "
        f"{ours['rows_per_s']:.0f} rows/s (target >= 200,000)"
    )


if __name__ == "__main__":
    main()
