"""gRPC serving: `tradeloop serve --grpc-port` vs a bare grpc.aio + onnxruntime server.

A trained, deployed project is served by `tradeloop serve` with gRPC on (routing, prediction
log and metrics on), and its ONNX bytes by `bench/grpc_bare.py` (nothing but the model): the
practical limit here. Both get the same single-row ModelInfer (raw FP32 [1, n_features], as
tritonclient sends it) from a CLOSED-LOOP PYTHON CLIENT (grpc.aio, one HTTP/2 connection,
`--streams` concurrent streams each sending its next call when the last one answers), run in
its own process. ghz is not used: it is not in this machine's Debian archive, and building it
(a Go toolchain plus its modules) was not done on this shared 2-core machine. The client costs
CPU on the same two cores, so compare the rows with each other, not with a native load tool's.
Target: tradeloop's p99 <= 2 ms at 8 streams.

    .venv/bin/python bench/grpc_load.py [--duration 10] [--streams 8] [--quick] [--profile]

`--profile` also runs the gateway under cProfile for one load run and prints where its time
goes (top functions by own time).
"""

from __future__ import annotations

import argparse
import asyncio
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
from typing import Any

import httpx
import numpy as np

VENV_BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
INFER = "/inference.GRPCInferenceService/ModelInfer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------ the client


async def drive(address: str, body: bytes, streams: int, duration: float) -> dict[str, Any]:
    """Closed loop: `streams` coroutines, each awaiting its answer before the next call."""
    import grpc

    lat: list[float] = []
    errors = calls = 0
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(INFER)  # bytes in, bytes out: no client-side (de)serializing
        first = await call(body)

        async def stream(until: float, keep: bool) -> None:
            nonlocal errors, calls
            perf = time.perf_counter
            while (t0 := perf()) < until:
                calls += 1
                try:
                    await call(body)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                if keep:
                    lat.append(perf() - t0)

        warm = time.perf_counter() + min(2.0, duration / 3)
        await asyncio.gather(*(stream(warm, False) for _ in range(streams)))
        t0 = time.perf_counter()
        await asyncio.gather(*(stream(t0 + duration, True) for _ in range(streams)))
        elapsed = time.perf_counter() - t0
    ms = np.array(lat) * 1000.0
    return {
        "rps": len(lat) / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p90": float(np.percentile(ms, 90)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
        "errors": errors,
        "calls": calls + 1,
        "first": first.hex(),
    }


def client(address: str, body_hex: str, streams: int, duration: float) -> None:
    import uvloop

    result = uvloop.run(drive(address, bytes.fromhex(body_hex), streams, duration))
    print(json.dumps(result))


def run_client(address: str, body: bytes, streams: int, duration: float) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--client",
            address,
            body.hex(),
            "--streams",
            str(streams),
            "--duration",
            str(duration),
        ],
        capture_output=True,
        text=True,
        timeout=duration + 120,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def run_h2load(address: str, body: bytes, streams: int, duration: float) -> dict[str, Any]:
    """The same call from h2load (nghttp2's native HTTP/2 load tool; Debian `nghttp2-client`):
    one connection, `streams` concurrent streams, the gRPC-framed body. h2load sees HTTP
    statuses only, not gRPC's trailers, so the answer itself is checked by the Python client's
    first call; latencies come from its per-request log."""
    with tempfile.TemporaryDirectory() as t:
        frame, log = Path(t) / "body", Path(t) / "log"
        frame.write_bytes(b"\x00" + len(body).to_bytes(4, "big") + body)
        out = subprocess.run(
            [
                "h2load",
                "-c1",
                f"-m{streams}",
                f"-D{duration:.0f}",
                "--warm-up-time=1",
                "-d",
                str(frame),
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
                f"--log-file={log}",
                f"http://{address}{INFER}",
            ],
            capture_output=True,
            text=True,
            timeout=duration + 60,
        ).stdout
        rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    ok = np.array([int(r[2]) for r in rows if r[1] == "200"], dtype=np.float64) / 1000.0
    m = re.search(r"finished in ([\d.]+)(s|ms)", out)
    elapsed = float(m.group(1)) * (1.0 if m and m.group(2) == "s" else 1e-3) if m else duration
    return {
        "rps": len(ok) / elapsed,
        "p50": float(np.percentile(ok, 50)) if len(ok) else float("nan"),
        "p90": float(np.percentile(ok, 90)) if len(ok) else float("nan"),
        "p99": float(np.percentile(ok, 99)) if len(ok) else float("nan"),
        "max": float(ok.max()) if len(ok) else float("nan"),
        "errors": len(rows) - len(ok),
        "calls": max(len(rows), 1),
    }


# ------------------------------------------------------------------------------ the servers


def prepare(tmp: Path) -> tuple[Path, Path, np.ndarray]:
    """A trained project with its champion deployed; its ONNX bytes; one feature row."""
    from tradeloop.data.source import checked_bars
    from tradeloop.project import Project
    from tradeloop.registry.mlflow_registry import Registry
    from tradeloop.serving.mlflow_source import RegistrySource
    from tradeloop.store import deployments as dep
    from tradeloop.templates import init_project
    from tradeloop.training.dataset import training_frame, xy
    from tradeloop.training.pipeline import train

    project = Project.load(init_project(tmp / "proj", "bench"))
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
    art = RegistrySource(Registry.for_project(project)).fetch("bench", result.version)
    model = tmp / "model.onnx"
    model.write_bytes(art.onnx_bytes)
    bars, _ = checked_bars(project.spec.data, project.root)
    x, _, _ = xy(training_frame(bars, project.spec), project.spec.feature_names)
    return project.root, model, np.asarray(x[:1], dtype=np.float32)


def request_body(row: np.ndarray) -> bytes:
    from tradeloop.serving.grpc.stubs import load

    req = load()["ModelInferRequest"](model_name="bench")
    req.inputs.add(name="input", datatype="FP32", shape=list(row.shape))
    req.raw_input_contents.append(row.astype("<f4").tobytes())
    return bytes(req.SerializeToString())


def wait_grpc(address: str, timeout: float = 120.0) -> None:
    import grpc

    with grpc.insecure_channel(address) as ch:
        grpc.channel_ready_future(ch).result(timeout=timeout)


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def decode(reply_hex: str) -> np.ndarray:
    from tradeloop.serving.grpc.stubs import load

    reply = load()["ModelInferResponse"].FromString(bytes.fromhex(reply_hex))
    return np.frombuffer(reply.raw_output_contents[0], "<f4")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="3 s per run")
    ap.add_argument("--profile", action="store_true", help="also profile the gateway")
    ap.add_argument("--client", nargs=2, metavar=("ADDRESS", "BODY_HEX"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    duration = 3.0 if args.quick else args.duration
    if args.client:
        client(args.client[0], args.client[1], args.streams, duration)
        return
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; closed-loop "
        f"Python client (grpc.aio, {args.streams} streams on one connection, own process), "
        f"{duration:.0f} s per run, single-row ModelInfer with raw FP32 input"
    )
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        root, model, row = prepare(tmp)
        body = request_body(row)
        results: dict[str, dict[str, Any]] = {}
        http, grpc_port = free_port(), free_port()
        cmd = [str(VENV_BIN / "tradeloop"), "serve", "--port", str(http)]
        bare = free_port()
        runs = [
            (
                "tradeloop serve --grpc-port",
                [*cmd, "--grpc-port", str(grpc_port)],
                grpc_port,
                f"http://127.0.0.1:{http}/readyz",
            ),
            (
                "bare grpc.aio + onnxruntime",
                [sys.executable, str(HERE / "grpc_bare.py"), str(model), str(bare)],
                bare,
                None,
            ),
        ]
        for name, argv, port, ready in runs:
            proc = subprocess.Popen(
                argv, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                if ready:
                    wait_http(ready)
                wait_grpc(f"127.0.0.1:{port}")
                for streams in sorted({1, args.streams}):
                    cpu0 = cpu_seconds(proc.pid)
                    r = run_client(f"127.0.0.1:{port}", body, streams, duration)
                    r["cpu_us"] = (cpu_seconds(proc.pid) - cpu0) / r["calls"] * 1e6
                    results[f"{name} [{streams}]"] = r
                if shutil.which("h2load"):
                    cpu0 = cpu_seconds(proc.pid)
                    h = run_h2load(f"127.0.0.1:{port}", body, args.streams, duration)
                    h["cpu_us"] = (cpu_seconds(proc.pid) - cpu0) / h["calls"] * 1e6
                    h["first"] = r["first"]
                    results[f"{name} [h2load {args.streams}]"] = h
            finally:
                stop(proc)
        import onnxruntime as ort

        sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        expected = sess.run(["prediction"], {"input": row})[0].reshape(-1)
        if args.profile:
            profile_gateway(root, cmd, http, body, args.streams, duration)
    print(
        f"\n{'server [streams]':<36}{'req/s':>8}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}"
        f"{'max ms':>8}{'errors':>7}{'CPU us/req':>11}  answer"
    )
    for name, r in results.items():
        same = "= onnxruntime" if np.array_equal(decode(r["first"]), expected) else "DIFFERS"
        print(
            f"{name:<36}{r['rps']:>8.0f}{r['p50']:>8.3f}{r['p90']:>8.3f}{r['p99']:>8.3f}"
            f"{r['max']:>8.2f}{r['errors']:>7}{r['cpu_us']:>11.0f}  {same}"
        )
    print("CPU us/req: the server process's user+system CPU per call, warm-up included")
    ours = results[f"tradeloop serve --grpc-port [{args.streams}]"]
    ref = results[f"bare grpc.aio + onnxruntime [{args.streams}]"]
    native = results.get(f"tradeloop serve --grpc-port [h2load {args.streams}]")
    if native is not None:
        print(
            f"h2load (native client): tradeloop gRPC p99 {native['p99']:.2f} ms at "
            f"{args.streams} streams (target <= 2 ms)"
        )
    print(
        f"\ntradeloop gRPC p99 {ours['p99']:.2f} ms at {args.streams} streams (target <= 2 ms); "
        f"{ours['rps'] / ref['rps']:.2f}x the bare server's req/s, "
        f"{ours['p99'] / ref['p99']:.2f}x its p99; gateway CPU per call "
        f"{ours['cpu_us'] - ref['cpu_us']:+.0f} us over the bare server's"
    )


def profile_gateway(
    root: Path, cmd: list[str], http: int, body: bytes, streams: int, duration: float
) -> None:
    """One more load run with the gateway under cProfile; print the top functions by own time."""
    out = root / "gateway.prof"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cProfile", "-o", str(out), *cmd, "--grpc-port", str(port)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{http}/readyz")
        wait_grpc(f"127.0.0.1:{port}")
        r = run_client(f"127.0.0.1:{port}", body, streams, duration)
    finally:
        proc.send_signal(2)  # SIGINT: a clean exit, so cProfile writes its file
        proc.wait(timeout=60)
    import pstats

    print(f"\nprofile of the gateway under load ({r['rps']:.0f} req/s under cProfile):")
    pstats.Stats(str(out)).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
