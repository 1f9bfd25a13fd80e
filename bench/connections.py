"""Connection hygiene: what the header deadline costs and what it buys, beside plain uvicorn.

The same gateway app (one linear ONNX model, no tokens) is served twice on loopback: with
uvicorn's own httptools protocol, which is what a user would run, and with tradeloop's
(`serving/connections.py`: the same protocol plus a header-read deadline). For each:

- req/s of single-row `/invocations` under wrk (8 connections, `--duration` seconds): the cost;
- how many of `--slow` slowloris connections (headers sent one byte every 50 ms) are still open
  after `header_timeout + 1` seconds: what it buys. Target: 0 for tradeloop, and req/s within
  the run-to-run noise of plain uvicorn.

    .venv/bin/python bench/connections.py [--duration 5] [--slow 200] [--header-timeout 1]

Needs wrk (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from onnx import TensorProto, helper, numpy_helper
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tradeloop.clock import SimulatedClock
from tradeloop.serving.server import build_app, uvicorn_config
from tradeloop.serving.source import DirectorySource
from tradeloop.spec import ServingSpec
from tradeloop.store import Store
from tradeloop.store.deployments import Deployed, apply

FEATURES = ["a", "b", "c"]


def linear_onnx() -> bytes:
    w = numpy_helper.from_array(np.ones((3, 1), dtype=np.float32), "w")
    shape = numpy_helper.from_array(np.array([-1], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "w"], ["z"]),
            helper.make_node("Reshape", ["z", "shape"], ["prediction"]),
        ],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, [None])],
        [w, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(app: Any, **overrides: Any) -> tuple[uvicorn.Server, threading.Thread, int]:
    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port, **overrides))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return server, thread, port


def wrk_rps(port: int, lua: Path, seconds: int) -> float:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            "-c8",
            f"-d{seconds}s",
            "-s",
            str(lua),
            f"http://127.0.0.1:{port}/invocations",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("Requests/sec"))
    return float(line.split()[-1])


def still_open_after(port: int, n: int, seconds: float) -> int:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        s.send(b"POST /invocations HTTP/1.1\r\nHost: bench\r\nX-Slow-")
        socks.append(s)
    alive = set(range(n))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and alive:
        for i in list(alive):
            try:
                socks[i].send(b"x")
                if socks[i].recv(1) == b"":
                    alive.discard(i)
            except BlockingIOError:
                continue
            except OSError:
                alive.discard(i)
        time.sleep(0.05)
    for s in socks:
        s.close()
    return len(alive)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--slow", type=int, default=200)
    ap.add_argument("--header-timeout", type=float, default=1.0)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk (apt-get install wrk)")
    root = Path(tempfile.mkdtemp(prefix="tl-bench-conn-"))
    store = Store.open(f"sqlite:///{root / 'db'}", SimulatedClock(datetime(2024, 1, 1, tzinfo=UTC)))
    source = DirectorySource(root / "models")
    source.put("demo", "1", linear_onnx(), FEATURES)
    apply(store, "demo", [Deployed("demo", "champion", "1", "live", 100)], actor="b", reason="b")
    body = root / "body.json"
    body.write_text(
        json.dumps({"dataframe_split": {"columns": FEATURES, "data": [[0.1, 0.2, 0.3]]}})
    )
    lua = root / "post.lua"
    lua.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.body = io.open("{body}"):read("*a")\n'
    )
    serving = ServingSpec(header_timeout=args.header_timeout)
    print(f"{'server':<34} {'req/s':>9}   slowloris open after {args.header_timeout + 1:.0f} s")
    for label, overrides in (
        ("uvicorn (httptools protocol)", {"http": HttpToolsProtocol}),
        ("tradeloop (header deadline)", {}),
    ):
        app = build_app(store, "demo", source, state_dir=root / label.split()[0], serving=serving)
        server, thread, port = start(app, **overrides)
        rps = wrk_rps(port, lua, args.duration)
        open_ = still_open_after(port, args.slow, args.header_timeout + 1)
        print(f"{label:<34} {rps:>9,.0f}   {open_} of {args.slow}")
        server.should_exit = True
        thread.join(15)
    store.close()


if __name__ == "__main__":
    main()
