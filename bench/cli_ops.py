"""Operator commands on a project with 20 versions: `deploy`, `models list`, `models show`,
beside the same answers from MLflow's own client in a fresh process (what a user would script).

The project trains once, then registers 19 more versions from that model (registry variants:
full lineage tags, their own runs), so the registry holds 20 complete versions. Each command is
a fresh process; the median wall and CPU time of --runs runs is printed, idle and then with a `tradeloop serve`
gateway on the project driven by wrk (8 connections) the whole time. Target: <= 2 s for each
tradeloop command (issue 16).

    .venv/bin/python bench/cli_ops.py [--runs 5] [--no-load]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import WRK_LUA, free_port, wait_ready

VENV_BIN = Path(sys.executable).parent
TARGET_S = 2.0
VERSIONS = 20
ADMIN = "bench@example.com"

MLFLOW_LIST = """
import sys
from mlflow import MlflowClient
c = MlflowClient(sys.argv[1], sys.argv[1])
print(len(c.search_model_versions("name='small'")))
"""
MLFLOW_ALIAS = """
import sys
from mlflow import MlflowClient
c = MlflowClient(sys.argv[1], sys.argv[1])
c.get_model_version("small", sys.argv[2])
c.set_registered_model_alias("small", "bench", sys.argv[2])
"""


def prepare(tmp: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.training.conftest import shrink

    from tradeloop.project import Project
    from tradeloop.registry.mlflow_registry import Registry
    from tradeloop.registry.variants import register_variant
    from tradeloop.templates import init_project
    from tradeloop.training.pipeline import train

    spec = init_project(tmp / "proj", "small")
    shrink(spec)
    p = Project.load(spec)
    train(p)
    reg = Registry.for_project(p)
    base = reg.get("small", "1")
    onnx, _ = reg.fetch_onnx("small", "1")
    for i in range(2, VERSIONS + 1):
        register_variant(reg, base, onnx, run_name=f"v{i}", reason="bench", trained_at="2030")
    assert len(reg.versions("small")) == VERSIONS
    p.close()
    # deploy is an operator action: the bench acts as the project's first admin (--save-local)
    subprocess.run(
        [
            str(VENV_BIN / "tradeloop"),
            "tokens",
            "create",
            "--role",
            "admin",
            "--user",
            ADMIN,
            "--save-local",
        ],
        cwd=spec.parent,
        check=True,
        capture_output=True,
    )
    return spec.parent


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run: on a shared machine CPU is the steadier figure."""
    cpu0, t0 = _child_cpu(), time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return time.perf_counter() - t0, _child_cpu() - cpu0


def table(root: Path, env: dict[str, str], runs: int, title: str) -> None:
    tl = str(VENV_BIN / "tradeloop")
    uri = f"sqlite:///{root / '.tradeloop' / 'mlflow.db'}"
    py = sys.executable
    rows = [
        ("tradeloop models list", [tl, "models", "list"], True),
        ("tradeloop models show 20", [tl, "models", "show", "20"], True),
        # alternating champions, so every run moves the alias and writes deployment state
        ("tradeloop deploy N (new champion)", None, True),
        ("MlflowClient search_model_versions", [py, "-c", MLFLOW_LIST, uri], False),
        ("MlflowClient get + set alias", [py, "-c", MLFLOW_ALIAS, uri, "20"], False),
    ]
    print(f"\n{title} (load average {os.getloadavg()[0]:.2f}), median of {runs} runs")
    print(f"{'command':<40} {'wall s':>8} {'cpu s':>8}  target")
    for label, argv, targeted in rows:
        times = []
        for i in range(runs + 1):
            cmd = argv or [tl, "deploy", str(VERSIONS - i % 2)]
            t = timed(cmd, root, env)
            if i:  # the first run warms the page cache
                times.append(t)
        s = statistics.median(w for w, _ in times)
        cpu = statistics.median(c for _, c in times)
        mark = ("ok" if s <= TARGET_S else f"over {TARGET_S}") if targeted else ""
        print(f"{label:<40} {s:>8.3f} {cpu:>8.3f}  {mark}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-load", action="store_true", help="idle only, no gateway under load")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for var in ("TRADELOOP_HOME", "TRADELOOP_DB_URL", "MLFLOW_TRACKING_URI"):
        env.pop(var, None)
    with tempfile.TemporaryDirectory(prefix="tl-cli-ops-") as t:
        print(f"training once and registering {VERSIONS} versions ...", file=sys.stderr)
        root = prepare(Path(t))
        print(f"machine: {os.cpu_count()} cores; {VERSIONS} complete versions")
        table(root, env, args.runs, "idle")
        if args.no_load or shutil.which("wrk") is None:
            return
        port = free_port()
        gw = subprocess.Popen(
            [str(VENV_BIN / "tradeloop"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        load = None
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz")
            from tradeloop.project import Project

            spec = Project.load(root / "tradeloop.yaml").spec
            body = Path(t) / "one.json"
            row = [[0.0] * len(spec.feature_names)]
            body.write_text(
                json.dumps({"dataframe_split": {"columns": spec.feature_names, "data": row}})
            )
            lua = body.with_suffix(".lua")
            lua.write_text(
                WRK_LUA.format(
                    body=body, headers='wrk.headers["Content-Type"] = "application/json"'
                )
            )
            url = f"http://127.0.0.1:{port}/invocations"
            load = subprocess.Popen(
                ["wrk", "-t2", "-c8", "-d3600s", "-s", str(lua), url],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(2)
            table(root, env, args.runs, "gateway under wrk load")
        finally:
            for proc in (load, gw):
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=30)


if __name__ == "__main__":
    main()
