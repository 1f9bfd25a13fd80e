"""The gateway `test_workers.py` runs under `serving.workers` (not a test module).

    python workers_app.py ROOT N    # N workers on a free port, written to ROOT/port

ROOT/workers.json says which worker is serving (pid, private port); with ROOT/fail present,
every worker fails to start; ROOT/grpc_port asks for gRPC on that port.

Models (`demo` v1 and v2) in ROOT/models, the store ROOT/db.sqlite, state ROOT/state, the
trading endpoints on (the default spec's features).
"""

from __future__ import annotations

import functools
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tradeloop.clock import SimulatedClock
from tradeloop.serving.server import build_app
from tradeloop.serving.source import DirectorySource
from tradeloop.serving.workers import WorkerPlan, run_workers
from tradeloop.spec import Spec
from tradeloop.store import Store

CLOCK_START = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


def build(root: str) -> Any:
    base = Path(root)
    if (base / "fail").exists():
        raise RuntimeError("this gateway cannot start (ROOT/fail exists)")
    clock = SimulatedClock(CLOCK_START)
    store = Store.open("sqlite:///" + str(base / "db.sqlite"), clock)
    return build_app(
        store,
        "demo",
        DirectorySource(base / "models"),
        state_dir=base / "state",
        clock=clock,
        features=Spec(name="t").features,
        poll_interval=0.05,
        predlog_flush_interval=0.05,
        gateway_id="gw",
        grpc_port=int(grpc.read_text()) if (grpc := base / "grpc_port").exists() else None,
    )


if __name__ == "__main__":
    root, n = Path(sys.argv[1]), int(sys.argv[2])
    plan = WorkerPlan(
        functools.partial(build, str(root)),
        "127.0.0.1",
        0,
        n,
        {"log_config": None},
        status_file=root / "workers.json",
    )
    run_workers(plan, on_ready=lambda port: (root / "port").write_text(str(port)))
