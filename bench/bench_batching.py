"""Rows for `bench/serving.py --batching`: single-row requests at concurrency 64, with
`serving.batching` off and on (idle flush, and deadline flush), beside the bare server.

The spec's `deployment.serving.batching` is written into the bench project's tradeloop.yaml
before each `tradeloop serve` starts; the batch-size histogram from /metrics says how many
requests an onnxruntime run held on average.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

CONNECTIONS = 64


def _set_batching(root: Path, original: str, batching: str | None) -> None:
    """The template's one-line `serving: {...}` mapping, with `batching` added (text edit: a
    YAML round trip would rewrite the whole file)."""
    path = root / "tradeloop.yaml"
    if batching is None:
        path.write_text(original)
        return
    line = next(x for x in original.splitlines() if x.strip().startswith("serving: {"))
    path.write_text(
        original.replace(line, line.rstrip().removesuffix("}") + f", batching: {batching}}}")
    )


def _mean_batch(port: int) -> float:
    total = count = 0.0
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        if line.startswith("tradeloop_batch_size_sum"):
            total = float(line.rsplit(" ", 1)[1])
        elif line.startswith("tradeloop_batch_size_count"):
            count = float(line.rsplit(" ", 1)[1])
    return total / count if count else float("nan")


def batching_rows(
    root: Path,
    env: dict[str, str],
    one: Path,
    duration: int,
    bare_cmd: list[str],
    wrk: Callable[..., dict[str, float]],
    run_server: Callable[..., subprocess.Popen[bytes]],
    free_port: Callable[[], int],
) -> None:
    ours = [str(Path(sys.executable).with_name("tradeloop")), "serve", "--host", "127.0.0.1"]
    runs: dict[str, tuple[list[str], str, str | None]] = {
        "bare starlette + onnxruntime": (bare_cmd, "/ping", None),
        "tradeloop, batching off": ([*ours, "--port"], "/readyz", None),
        "tradeloop, batching idle 64/1ms": (
            [*ours, "--port"],
            "/readyz",
            "{max_batch: 64, max_delay: 1ms}",
        ),
        "tradeloop, batching deadline 64/1ms": (
            [*ours, "--port"],
            "/readyz",
            "{max_batch: 64, max_delay: 1ms, flush: deadline}",
        ),
    }
    results: dict[str, dict[str, float]] = {}
    original = (root / "tradeloop.yaml").read_text()
    try:
        for name, (cmd, ready, batching) in runs.items():
            _set_batching(root, original, batching)
            port = free_port()
            proc = run_server([*cmd, str(port)], env, root, port, ready, stderr=True)
            try:
                url = f"http://127.0.0.1:{port}/invocations"
                wrk(url, one, 1, connections=CONNECTIONS)  # warm up
                r = wrk(url, one, duration, connections=CONNECTIONS)
                r["batch"] = _mean_batch(port) if batching else float("nan")
                results[name] = r
            finally:
                proc.terminate()
                proc.wait(timeout=20)
    finally:
        _set_batching(root, original, None)
    print(
        f"\n{'1 row, ' + str(CONNECTIONS) + ' connections':<38}{'req/s':>10}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'errors':>8}{'mean batch':>12}{'vs bare':>9}"
    )
    bare = results["bare starlette + onnxruntime"]["rps"]
    for name, r in results.items():
        print(
            f"{name:<38}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['errors']:>8.0f}"
            f"{r['batch']:>12.1f}{r['rps'] / max(bare, 1e-9):>8.2f}x"
        )
