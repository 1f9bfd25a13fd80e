"""Rows for `bench/serving.py --tracing`: what OpenTelemetry costs the gateway.

The same `tradeloop serve` and single-row payload three ways: tracing off (no OTEL_*
variables), on with 1% of traces sampled (`parentbased_traceidratio`, 0.01) and on with every
trace sampled, each exporting OTLP/HTTP to a collector stand-in on loopback that accepts and
discards. Target: off costs nothing, 1% costs <= 10% of single-row req/s.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Collector(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self) -> None:  # http.server's name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).received += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def tracing_rows(
    root: Path,
    env: dict[str, str],
    one: Path,
    duration: int,
    wrk: Callable[..., dict[str, float]],
    run_server: Callable[..., subprocess.Popen[bytes]],
    free_port: Callable[[], int],
) -> None:
    import sys

    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    base = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    on = {**base, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "TRADELOOP_LOG_LEVEL": "WARNING"}
    runs = {
        "tracing off": base,
        "tracing on, 1% sampled": {
            **on,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.01",
        },
        "tracing on, 100% sampled": {**on, "OTEL_TRACES_SAMPLER": "always_on"},
    }
    cmd = [str(Path(sys.executable).with_name("tradeloop")), "serve", "--host", "127.0.0.1"]
    results: dict[str, dict[str, float]] = {}
    for name, e in runs.items():
        port = free_port()
        proc = run_server([*cmd, "--port", str(port)], e, root, port, "/readyz")
        try:
            url = f"http://127.0.0.1:{port}/invocations"
            wrk(url, one, 1)  # warm up
            results[name] = wrk(url, one, duration)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    collector.shutdown()
    off = results["tracing off"]["rps"]
    print(f"\n{'tradeloop serve, 1 row':<32}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'cost':>8}")
    for name, r in results.items():
        cost = 1 - r["rps"] / max(off, 1e-9)
        print(f"{name:<32}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{cost:>8.1%}")
    one_pct = 1 - results["tracing on, 1% sampled"]["rps"] / max(off, 1e-9)
    print(
        f"\n1% sampled costs {one_pct:.1%} of single-row req/s (target <= 10%); "
        f"the collector received {_Collector.received} export request(s)"
    )
    per_request_cost()


def per_request_cost(n: int = 200_000) -> None:
    """The gateway's telemetry alone (begin + finish of a request), in-process: steadier than
    req/s on a shared machine, and what the rows above differ by."""
    import os
    import timeit

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tradeloop.observability import tracing
    from tradeloop.serving.context import Ctx
    from tradeloop.serving.telemetry import RequestTelemetry
    from tradeloop.spec import ServingSpec

    tel = RequestTelemetry("bench", ServingSpec())
    ctx = Ctx({b"content-type": b"application/json"})
    ctx.request_id = "r"

    def one() -> None:
        st = tel.begin("/invocations", "POST", ctx)
        if st is not None:
            tel.finish(st, "/invocations", ctx, 200, 0.001)

    print(f"\n{'gateway telemetry per request':<32}{'us':>10}")
    for name, ratio in (("tracing off", None), ("1% sampled", "0.01"), ("100% sampled", "1")):
        if ratio is not None:
            os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
            os.environ["OTEL_TRACES_SAMPLER_ARG"] = ratio
            tracing.configure_tracing(exporter=InMemorySpanExporter(), batch=True)
        us = timeit.timeit(one, number=n) / n * 1e6
        print(f"{name:<32}{us:>10.2f}")
        tracing.shutdown_tracing()
