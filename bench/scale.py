"""Scale figures for a many-pipeline project (issue 11), printed beside their targets.

1. Reconcile cycle time against the number of pipelines (1, 10, 50), on SQLite and on
   PostgreSQL: every pipeline trained and serving, one manager running the trainer, deployer
   and monitor of every pipeline; a cycle is one `run_once` with every controller due.
   Target: linear growth, <= 50 ms per pipeline per cycle.
2. Gateway RSS and single-row p99 (KServe v2 infer, sequential, one connection) with 1, 10
   and 50 models loaded in one `tradeloop serve`. Targets: p99 at 50 <= 1.3x p99 at 1;
   RSS <= 1.5 GB at 50.
3. Single-row p99 with and without a training job (`tradeloop job run`, its own process at
   nice 10, as the trainer launches it) running on the same machine. Target: <= 1.3x idle.

Setup trains one small linear model per pipeline (seconds each), so the whole run takes
several minutes. PostgreSQL: $TRADELOOP_BENCH_PG (default postgresql+psycopg://postgres@
127.0.0.1:5432/postgres) gets a fresh database per size, dropped afterwards.

    .venv/bin/python bench/scale.py [--sizes 1,10,50] [--cycles 5] [--requests 2000] [--no-pg]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from serving import free_port, wait_ready

TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))
PG = os.environ.get("TRADELOOP_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PER_PIPELINE_MS = 50.0
HOUR = timedelta(hours=1)


def pipeline_text(name: str, seed: int, lightgbm: bool = False) -> str:
    from tradeloop.templates import multi_specs

    text = multi_specs()["equities-1h" if lightgbm else "fx-15m"]
    subs = {
        "name: equities-1h" if lightgbm else "name: fx-15m": f"name: {name}",
        "    bars: 3000": "    bars: 1400",
        "    folds: 3": "    folds: 2",
        "    min_train_bars: 1000": "    min_train_bars: 500",
        "seed: 7" if lightgbm else "seed: 11": f"seed: {seed}",
    }
    for old, new in subs.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def make_project(root: Path, n: int) -> Path:
    from tradeloop.templates import git, git_commit

    pdir = root / "pipelines"
    pdir.mkdir(parents=True)
    for i in range(n):
        (pdir / f"p{i:03d}.yaml").write_text(pipeline_text(f"p{i:03d}", 100 + i))
    (root / ".gitignore").write_text(".tradeloop/\n")
    git(root, "init", "-q", "-b", "main")
    git_commit(root, "bench pipelines", "pipelines", ".gitignore")
    return root


def _env(db_url: str | None) -> None:
    for k in ("TRADELOOP_DB_URL", "MLFLOW_TRACKING_URI", "TRADELOOP_HOME"):
        os.environ.pop(k, None)
    if db_url:
        os.environ["TRADELOOP_DB_URL"] = db_url


def fresh_pg() -> tuple[str, str]:
    import psycopg

    name = f"tl_bench_{uuid.uuid4().hex[:8]}"
    admin = PG.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return PG.rsplit("/", 1)[0] + "/" + name, name


def drop_pg(name: str) -> None:
    import psycopg

    admin = PG.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reconcile_cycles(root: Path, cycles: int) -> tuple[float, int]:
    """Train and deploy every pipeline, then time `cycles` cycles with every controller due."""
    from tradeloop.cli._common import load_projects
    from tradeloop.clock import SimulatedClock
    from tradeloop.control.assembly import assemble
    from tradeloop.project import Project

    projects, _ = load_projects(root)
    start = projects[0].spec.data.simulator.start
    clock = SimulatedClock(start + 340 * HOUR)  # 15m bars: 1360 of 1400 exist
    first = Project(projects[0].spec, projects[0].spec_path, clock)
    rest = [first.sibling(p.spec, p.spec_path) for p in projects[1:]]
    proc = assemble(first, pipelines=[first, *rest])
    for _ in range(3):  # train, deploy, settle
        proc.manager.run_once()
        clock.advance(HOUR)
    times = []
    for _ in range(cycles):
        for slot in proc.manager._slots.values():
            slot.next_run_at = None
        t0 = time.perf_counter()
        records = proc.manager.run_once()
        times.append(time.perf_counter() - t0)
        bad = [r for r in records if r.outcome != "ok"]
        assert not bad, bad[:3]
        clock.advance(timedelta(minutes=1))
    proc.manager.release_all()
    proc.close()
    trained = sum(1 for w in proc.worlds.values() if w.registry.versions(w.name))
    first.close()
    return statistics.median(times), trained


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def p99_ms(url: str, model: str, n: int) -> float:
    with httpx.Client(base_url=url, timeout=30) as c:
        (inp,) = c.get(f"/v2/models/{model}").json()["inputs"]
        width = inp["shape"][-1]
        body = {
            "inputs": [
                {
                    "name": inp["name"],
                    "shape": [1, width],
                    "datatype": "FP32",
                    "data": [0.1] * width,
                }
            ]
        }
        for _ in range(200):
            c.post(f"/v2/models/{model}/infer", json=body)
        lat = []
        for _ in range(n):
            t0 = time.perf_counter()
            r = c.post(f"/v2/models/{model}/infer", json=body)
            lat.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
    lat.sort()
    return lat[int(0.99 * len(lat)) - 1] * 1000


def gateway(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [TRADELOOP, "serve", "--spec", str(root), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/v2/health/ready", timeout=180)
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,10,50")
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="tl-scale-"))
    print(f"# scale bench: {os.cpu_count()} cores; sizes {sizes}; cycles {args.cycles}")
    print("\n## reconcile cycle (trainer + deployer + monitor of every pipeline)")
    print(f"{'store':<11}{'pipelines':>10}{'cycle ms':>11}{'ms/pipeline':>13}{'target':>9}")
    cycle: dict[tuple[str, int], float] = {}
    roots: dict[int, Path] = {}
    for store in ["sqlite"] + ([] if args.no_pg else ["postgresql"]):
        for n in sizes:
            root = make_project(tmp / f"{store}-{n}", n)
            pgname = None
            url = None
            if store == "postgresql":
                url, pgname = fresh_pg()
            _env(url)
            try:
                med, trained = reconcile_cycles(root, args.cycles)
            finally:
                _env(None)
                if pgname:
                    drop_pg(pgname)
            assert trained == n, f"{trained}/{n} pipelines trained"
            cycle[(store, n)] = med
            if store == "sqlite":
                roots[n] = root
            per = med * 1000 / n
            ok = "ok" if per <= PER_PIPELINE_MS else "MISSED"
            print(f"{store:<11}{n:>10}{med * 1000:>11.1f}{per:>13.1f}{'<= 50':>9} {ok}")
    print("\n## gateway with N models (one `tradeloop serve`, single-row v2 infer)")
    print(f"{'models':>7}{'RSS MB':>9}{'p99 ms':>9}{'p99 / p99(1)':>14}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))}
    base_p99 = None
    for n in sizes:
        proc, url = gateway(roots[n], env)
        try:
            p99 = p99_ms(url, "p000", args.requests)
            rss = rss_mb(proc.pid)
        finally:
            stop(proc)
        base_p99 = base_p99 or p99
        print(f"{n:>7}{rss:>9.0f}{p99:>9.2f}{p99 / base_p99:>14.2f}")
    print("targets: p99(50) <= 1.3x p99(1); RSS(50) <= 1536 MB")
    print("\n## single-row p99 while a training job runs on this machine")
    root = roots[sizes[0]]
    proc, url = gateway(root, env)
    try:
        idle = p99_ms(url, "p000", args.requests)
        job = subprocess.Popen(  # the command the trainer launches (at its priority)
            [
                TRADELOOP,
                "job",
                "run",
                "--spec",
                str(root),
                "--pipeline",
                "p000",
                "--trigger",
                "bench:scale",
                "--reason",
                "bench: p99 during training",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(2)  # past its imports, into the folds
        busy = p99_ms(url, "p000", args.requests)
        still = job.poll() is None
        job.wait(600)
    finally:
        stop(proc)
    print(f"{'idle p99 ms':>12}{'training p99 ms':>17}{'ratio':>7}{'target':>8}")
    print(
        f"{idle:>12.2f}{busy:>17.2f}{busy / idle:>7.2f}{'<= 1.3':>8}"
        + ("" if still else "  (the job ended before the measurement did)")
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
