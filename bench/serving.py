"""Serving: tradeloop's gateway beside `mlflow models serve` and a bare Starlette server.

The same trained model is served four ways, one process each on loopback: MLflow's scoring
server with the `onnx` flavor, MLflow's with the native LightGBM flavor (the same parameters
refit on the same rows), `bench/bare_server.py` (Starlette + onnxruntime and nothing else: the
practical limit on this machine), and `tradeloop serve` (routing, prediction log and metrics
on). The same single-row `/invocations` payload (`dataframe_split`) is driven by wrk at 8
connections, then a 1,000-row payload gives rows/s. The gateway also gets the single row over
the Open Inference Protocol, as JSON and as binary tensors. Targets: single row >= the bare
server's req/s with p99 <= 2 ms (or <= 1.2x the bare server's p99 when that is higher), 0
errors, >= 400,000 rows/s. Two rows without a server, the model alone on the same 1,000-row
batch (one run at a time, then two at once), show the ceiling for the rows/s column.

    .venv/bin/python bench/serving.py [--duration 10] [--quick] [--no-mlflow] [--profile]
    .venv/bin/python bench/serving.py --tracing [--quick]   # tracing off vs 1% sampled
    .venv/bin/python bench/serving.py --batching [--quick]  # c=64, serving.batching off/on
    .venv/bin/python bench/serving.py --workers 2 [--quick] # 1 and 2 gateway workers vs bare

`--profile` runs the gateway once more under cProfile through a single-row wrk run and
prints where the time per request goes. Needs wrk (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

VENV_BIN = Path(sys.executable).parent
BENCH = Path(__file__).parent
WRK_LUA = """wrk.method = "POST"
{headers}
wrk.body = io.open("{body}", "rb"):read("*a")
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


def wrk(
    url: str,
    body: Path,
    duration: int,
    connections: int = 8,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    lua = body.with_suffix(".lua")
    given = headers if headers is not None else {"Content-Type": "application/json"}
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in given.items())
    lua.write_text(WRK_LUA.format(body=body, headers=lines))
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
    cmd: list[str], env: dict[str, str], cwd: Path, port: int, ready: str, stderr: bool = False
) -> subprocess.Popen[bytes]:
    """`stderr`: keep the server's stderr (to see why one did not start)."""
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=None if stderr else subprocess.DEVNULL,
    )
    wait_ready(f"http://127.0.0.1:{port}{ready}")
    return proc


def onnx_file(env: dict[str, str], tmp: Path) -> Path:
    """The registered version's ONNX file, for the bare server."""
    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    local = mlflow.artifacts.download_artifacts("models:/bench/1", dst_path=str(tmp / "onnx"))
    return next(Path(local).rglob("*.onnx"))


def bodies(tmp: Path, features: list[str], X: np.ndarray) -> dict[str, tuple[Path, dict[str, str]]]:
    """name -> (body file, headers) for the payloads the bench sends."""
    json_type = {"Content-Type": "application/json"}
    out: dict[str, tuple[Path, dict[str, str]]] = {}
    for name, n in (("one", 1), ("batch", 1000)):
        path = tmp / f"{name}.json"
        split = {"dataframe_split": {"columns": features, "data": X[:n].tolist()}}
        path.write_text(json.dumps(split))
        out[name] = (path, json_type)
    row = X[:1].astype(np.float32)
    tensor = {"name": "input", "shape": list(row.shape), "datatype": "FP32"}
    v2_json = tmp / "v2.json"
    v2_json.write_text(json.dumps({"inputs": [{**tensor, "data": row.reshape(-1).tolist()}]}))
    out["v2 json"] = (v2_json, json_type)
    head = json.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": row.nbytes}}],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    v2_bin = tmp / "v2.bin"
    v2_bin.write_bytes(head + row.tobytes())
    out["v2 binary"] = (v2_bin, {"Inference-Header-Content-Length": str(len(head))})
    return out


def raw_onnxruntime(model: Path, x: np.ndarray, seconds: float = 3.0) -> dict[str, float]:
    """rows/s of the model alone on 1,000-row batches, no server: one session run at a time
    (the gateway's session options: one thread per run), and two at once from two threads
    (both cores). The ceiling for any server's batch row on this machine."""
    import threading

    import onnxruntime as ort

    from tradeloop.serving.runtime import session_options

    session = ort.InferenceSession(
        model.read_bytes(), session_options(), providers=["CPUExecutionProvider"]
    )
    batch = {"input": np.ascontiguousarray(x[:1000], dtype=np.float32)}
    for _ in range(10):
        session.run(["prediction"], batch)

    def rate(threads: int) -> float:
        counts = [0] * threads
        end = time.perf_counter() + seconds

        def loop(i: int) -> None:
            while time.perf_counter() < end:
                session.run(["prediction"], batch)
                counts[i] += 1

        workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
        t = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return sum(counts) * len(batch["input"]) / (time.perf_counter() - t)

    return {"one": rate(1), "two": rate(2)}


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def profile(
    root: Path, env: dict[str, str], body: tuple[Path, dict[str, str]], duration: int
) -> str:
    """The gateway under cProfile through one single-row wrk run: where a request's time goes,
    per request (cProfile's own overhead inflates the Python-heavy parts)."""
    import pstats

    port, out = free_port(), root / "gateway.prof"
    cmd = [str(VENV_BIN / "python"), "-m", "cProfile", "-o", str(out), str(VENV_BIN / "tradeloop")]
    proc = run_server(
        [*cmd, "serve", "--host", "127.0.0.1", "--port", str(port)], env, root, port, "/readyz"
    )
    try:
        wrk(f"http://127.0.0.1:{port}/invocations", body[0], duration, headers=body[1])
    finally:
        stop(proc)
    if not out.exists():
        return "(no profile written)"
    stats: dict[Any, Any] = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    n = max(
        (
            nc
            for (f, _, name), (_, nc, *_) in stats.items()
            if f.endswith("gateway.py") and name == "run"
        ),
        default=0,
    )
    if not n:
        return "(no request was profiled)"
    keep = ("tradeloop/serving", "uvicorn/protocols", "starlette", "onnxruntime", "prometheus")
    rows = sorted(
        (
            (ct, tt, nc, f, line, name)
            for (f, line, name), (_, nc, tt, ct, _) in stats.items()
            if nc >= n // 2 and (any(k in f for k in keep) or "orjson" in name or "numpy" in name)
        ),
        reverse=True,
    )
    lines = [f"{n} requests; per request: cumulative us, own us, calls per request, function"]
    for ct, tt, nc, f, line, name in rows[:40]:
        short = "/".join(Path(f).parts[-2:]) if "/" in f else f
        lines.append(
            f"{ct / n * 1e6:>9.1f} {tt / n * 1e6:>8.1f} {nc / n:>6.1f}  {name}  {short}:{line}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="3 s per run")
    ap.add_argument("--no-mlflow", action="store_true", help="skip the two mlflow serve rows")
    ap.add_argument("--profile", action="store_true", help="profile the gateway (cProfile)")
    ap.add_argument(
        "--tracing", action="store_true", help="only: tradeloop with tracing off vs 1%% sampled"
    )
    ap.add_argument(
        "--batching",
        action="store_true",
        help="only: 1 row at 64 connections, serving.batching off and on, beside the bare server",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="only: 1 row with 1 and N workers (serve --workers N), beside the bare server's",
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
        payload = bodies(tmp, features, X)
        if args.tracing:
            from bench_tracing import tracing_rows

            tracing_rows(root, env, payload["one"][0], duration, wrk, run_server, free_port)
            return
        bare_cmd = [
            str(VENV_BIN / "python"),
            str(BENCH / "bare_server.py"),
            str(onnx_file(env, tmp)),
        ]
        if args.workers:
            from bench_workers import workers_rows

            tools = (wrk, run_server, free_port, stop)
            workers_rows(root, env, payload["one"][0], duration, bare_cmd, args.workers, tools)
            return
        if args.batching:
            from bench_batching import batching_rows

            batching_rows(
                root, env, payload["one"][0], duration, bare_cmd, wrk, run_server, free_port
            )
            return
        mlflow_cmd = ["mlflow", "models", "serve", "--env-manager", "local", "-h", "127.0.0.1"]
        servers: dict[str, tuple[list[str], str, list[str]]] = {
            "bare starlette + onnxruntime": (
                bare_cmd,
                "/ping",
                [],
            ),
            "tradeloop serve": (
                [str(VENV_BIN / "tradeloop"), "serve", "--host", "127.0.0.1", "--port"],
                "/readyz",
                ["v2 json", "v2 binary"],
            ),
        }
        if not args.no_mlflow:
            servers["mlflow serve (onnx flavor)"] = (
                [*mlflow_cmd, "-m", "models:/bench/1", "-p"],
                "/ping",
                [],
            )
            servers["mlflow serve (lightgbm flavor)"] = (
                [*mlflow_cmd, "-m", "models:/bench-lgbm/1", "-p"],
                "/ping",
                [],
            )
        results: dict[str, dict[str, float]] = {}
        for name, (cmd, ready, extra) in servers.items():
            port = free_port()
            proc = run_server([*cmd, str(port)], env, root, port, ready)
            try:
                url = f"http://127.0.0.1:{port}/invocations"
                wrk(url, payload["one"][0], 1)  # warm up
                r = wrk(url, payload["one"][0], duration)
                b = wrk(url, payload["batch"][0], duration)
                r["rows_per_s"] = b["rps"] * 1000
                r["batch_errors"] = b["errors"]
                results[name] = r
                for kind in extra:
                    v2 = f"http://127.0.0.1:{port}/v2/models/bench/infer"
                    body, headers = payload[kind]
                    r = wrk(v2, body, duration, headers=headers)
                    results[f"{name}, {kind} (/v2)"] = {
                        **r,
                        "rows_per_s": float("nan"),
                        "batch_errors": 0,
                    }
            finally:
                stop(proc)
        raw = raw_onnxruntime(onnx_file(env, tmp), X)
        report = profile(root, env, payload["one"], duration) if args.profile else ""
    print(f"\n{'server':<40}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'rows/s':>12}")
    for name, r in results.items():
        print(
            f"{name:<40}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}"
            f"{r['errors'] + r['batch_errors']:>8.0f}{r['rows_per_s']:>12.0f}"
        )
    for label, key in (("1 run at a time", "one"), ("2 runs at once", "two")):
        name = f"raw onnxruntime, no server, {label}"
        print(f"{name:<40}{'':>10}{'':>9}{'':>9}{'':>8}{raw[key]:>12.0f}")
    ours, bare = results["tradeloop serve"], results["bare starlette + onnxruntime"]
    p99_target = max(2.0, 1.2 * bare["p99"])
    print(
        f"\ntradeloop vs bare server: {ours['rps'] / max(bare['rps'], 1e-9):.2f}x req/s "
        f"(target >= 1.0x), p99 {ours['p99']:.2f} ms vs {bare['p99']:.2f} ms "
        f"(target <= {p99_target:.2f} ms)"
    )
    for name, target in (("onnx", 4), ("lightgbm", 25)):
        other = results.get(f"mlflow serve ({name} flavor)")
        if other:
            x = ours["rps"] / max(other["rps"], 1e-9)
            print(f"tradeloop vs mlflow serve ({name} flavor): {x:.1f}x (target >= {target}x)")
    print(
        f"errors {ours['errors'] + ours['batch_errors']:.0f} (target 0); batch "
        f"{ours['rows_per_s']:.0f} rows/s (target >= 400,000; the model alone on both cores: "
        f"{raw['two']:.0f})"
    )
    if report:
        print("\nprofile of the gateway, single row (cProfile):\n" + report)


if __name__ == "__main__":
    main()
