"""Rows for `bench/serving.py --workers N`: single-row req/s, p50 and p99 with 1 and N
gateway workers (`tradeloop serve --workers N`), beside the bare server with 1 and N uvicorn
workers (`BARE_WORKERS`, uvicorn's own supervisor, the same shared-socket scheme).

wrk runs on the same machine and takes CPU itself (two threads), so on a 2-core machine N=2
workers compete with the load generator: the figure is what this box gives, not the scaling
of the gateway. Each worker's share of the requests comes from its prediction-log files
(`part-<gateway-id>-w<i>-...`), read after a graceful stop.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

SETTLE = 3.0  # seconds after the first worker answers, for the others to finish starting


def _shares(root: Path, since: float) -> str:
    """Rows per prediction-log writer written after `since` (a share per worker)."""
    import polars as pl

    counts: Counter[str] = Counter()
    for f in root.rglob("part-*.parquet"):
        m = re.match(r"part-(.+)-[0-9a-f]{32}\.parquet$", f.name)
        if m and f.stat().st_mtime >= since:
            counts[m.group(1)] += pl.read_parquet(f).height
    total = sum(counts.values()) or 1
    return ", ".join(f"{w} {100 * c / total:.0f}%" for w, c in sorted(counts.items()))


def workers_rows(
    root: Path,
    env: dict[str, str],
    one: Path,
    duration: int,
    bare_cmd: list[str],
    workers: int,
    tools: tuple[Callable[..., object], ...],
) -> None:
    """`tools`: bench/serving.py's wrk, run_server, free_port and stop."""
    wrk, run_server, free_port, stop = cast(tuple[Any, Any, Any, Any], tools)
    ours = [str(Path(sys.executable).with_name("tradeloop")), "serve", "--host", "127.0.0.1"]
    runs: list[tuple[str, list[str], str, dict[str, str]]] = []
    for n in sorted({1, workers}):
        runs.append((f"bare starlette, {n} worker(s)", bare_cmd, "/ping", {"BARE_WORKERS": str(n)}))
        runs.append(
            (
                f"tradeloop serve --workers {n}",
                [*ours, "--workers", str(n), "--port"],
                "/readyz",
                {},
            )
        )
    results: dict[str, dict[str, float]] = {}
    shares: dict[str, str] = {}
    for name, cmd, ready, extra in runs:
        port = free_port()
        proc = run_server([*cmd, str(port)], {**env, **extra}, root, port, ready, stderr=True)
        since = time.time()
        try:
            time.sleep(SETTLE)
            url = f"http://127.0.0.1:{port}/invocations"
            wrk(url, one, 2)  # warm up every worker
            results[name] = wrk(url, one, duration)
        finally:
            stop(proc)
        if name.startswith("tradeloop"):
            shares[name] = _shares(root, since)
    print(
        f"\n{'server (1 row, wrk -t2 -c8)':<36}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
    )
    for name, r in results.items():
        print(f"{name:<36}{r['rps']:>10.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['errors']:>8.0f}")
    for name, share in shares.items():
        print(f"{name}: requests per worker {share}")
    if workers > 1:
        one_w = results["tradeloop serve --workers 1"]["rps"]
        n_w = results[f"tradeloop serve --workers {workers}"]["rps"]
        bare1 = results["bare starlette, 1 worker(s)"]["rps"]
        bare_n = results[f"bare starlette, {workers} worker(s)"]["rps"]
        print(
            f"\n{workers} workers vs 1: tradeloop {n_w / max(one_w, 1e-9):.2f}x, "
            f"bare {bare_n / max(bare1, 1e-9):.2f}x req/s"
        )
