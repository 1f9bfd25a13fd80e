"""The whole scale-out topology on one machine, each piece its own process, as at scale.

    .venv/bin/python deploy/local/cluster.py PROJECT [--gateways 2] [--deployers 2]
        [--base-port 8080] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--prometheus]

PROJECT is a tradeloop project folder (a git repository: `tradeloop init DIR --example multi`).
Started, in order, and stopped together on Ctrl-C (or SIGTERM):

| process | here | at scale |
| --- | --- | --- |
| `mlflow server` on PostgreSQL, artifacts proxied (`--artifacts-destination`) | port base+0 | a Deployment (or managed MLflow), artifacts in S3/GCS/Azure Blob |
| N gateways `tradeloop serve` (every pipeline) | ports base+1 .. base+N | a Deployment with N replicas behind a Service |
| `controller run trainer` (it launches training jobs) | metrics on base+20 | a Deployment; jobs are Kubernetes Jobs running the same command |
| M `controller run deployer` replicas (one leads, by lease) | metrics on base+21 .. | a Deployment with M replicas |
| `controller run monitor` | metrics on base+30 | a Deployment |
| Prometheus (with `--prometheus`, when installed) scraping all of the above | port base+90 | Prometheus Operator (`deploy/k8s` ServiceMonitor) |

Two fresh PostgreSQL databases are made for the run (the operational store and MLflow's), named
after the base port, and dropped at the end unless `--keep`. Logs and the scrape config go to
`PROJECT/.tradeloop-cluster/`. Each process gets its own TRADELOOP_HOME there, so they share
nothing on disk but the project's git repository and the prediction log folder the monitor
reads (see docs/architecture.md, "State with replicas").
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
TRADELOOP = str(BIN / "tradeloop")
MLFLOW = str(BIN / "mlflow")


def _admin(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def make_db(pg: str, name: str) -> str:
    import psycopg

    with psycopg.connect(_admin(pg), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    return pg.rsplit("/", 1)[0] + "/" + name


def drop_db(pg: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_admin(pg), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


def scrape_config(targets: dict[str, list[str]]) -> str:
    jobs = "".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: [{', '.join(ts)}]\n"
        for job, ts in targets.items()
    )
    return "global:\n  scrape_interval: 5s\nscrape_configs:\n" + jobs


class Cluster:
    def __init__(self, project: Path, work: Path) -> None:
        self.project, self.work = project, work
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115  # closed with the process
        home = self.work / "home" / name
        home.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            argv,
            cwd=self.project,
            env={"TRADELOOP_HOME": str(home), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append((name, proc))
        print(f"  {name:<12} pid {proc.pid}  log {log.name}")
        return proc

    def stop(self) -> None:
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in reversed(self.procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("project", type=Path)
    ap.add_argument("--gateways", type=int, default=2)
    ap.add_argument("--deployers", type=int, default=2)
    ap.add_argument("--base-port", type=int, default=8080)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--prometheus", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the databases at the end")
    args = ap.parse_args()
    project = args.project.resolve()
    if not (project / ".git").exists():
        print(f"{project} is not a git repository (tradeloop init DIR makes one)", file=sys.stderr)
        return 2
    base = args.base_port
    work = project / ".tradeloop-cluster"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    store_db, mlflow_db = f"tradeloop_cluster_{base}", f"tradeloop_cluster_{base}_mlflow"
    store_url, mlflow_url = make_db(args.pg, store_db), make_db(args.pg, mlflow_db)
    shared = work / "shared"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))},
        "TRADELOOP_DB_URL": store_url,
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{base}",
        "TRADELOOP_ARTIFACT_ROOT": "mlflow-artifacts:/tradeloop",
        "TRADELOOP_PREDICTIONS_DIR": str(shared / "predictions"),
    }
    cluster = Cluster(project, work)
    targets: dict[str, list[str]] = {"gateway": [], "controllers": []}
    print(f"tradeloop local cluster for {project}")
    try:
        cluster.start(
            "mlflow",
            [
                MLFLOW,
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(base),
                "--backend-store-uri",
                mlflow_url,
                "--serve-artifacts",
                "--artifacts-destination",
                str(work / "artifacts"),
                "--workers",
                "1",
            ],
            env,
        )
        wait_http(f"http://127.0.0.1:{base}/health")
        for i in range(args.gateways):
            port = base + 1 + i
            cluster.start(
                f"gateway-{i + 1}",
                [TRADELOOP, "serve", "--port", str(port), "--gateway-id", f"gw-{i + 1}"],
                env,
            )
            targets["gateway"].append(f"'127.0.0.1:{port}'")
        roles = [("trainer", base + 20)]
        roles += [(f"deployer-{i + 1}", base + 21 + i) for i in range(args.deployers)]
        roles += [("monitor", base + 30)]
        for name, mport in roles:
            kind = name.split("-")[0]
            cluster.start(
                name,
                [
                    TRADELOOP,
                    "controller",
                    "run",
                    kind,
                    "--metrics-port",
                    str(mport),
                    "--lease-ttl",
                    "10",
                ],
                env,
            )
            targets["controllers"].append(f"'127.0.0.1:{mport}'")
        for i in range(args.gateways):
            wait_http(f"http://127.0.0.1:{base + 1 + i}/healthz")
        (work / "prometheus.yml").write_text(scrape_config(targets))
        if args.prometheus and shutil.which("prometheus"):
            cluster.start(
                "prometheus",
                [
                    "prometheus",
                    f"--config.file={work / 'prometheus.yml'}",
                    f"--storage.tsdb.path={work / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{base + 90}",
                ],
                env,
            )
        print(f"gateways: {', '.join('http://' + t.strip(chr(39)) for t in targets['gateway'])}")
        print(f"mlflow:   http://127.0.0.1:{base}    scrape config: {work / 'prometheus.yml'}")
        print("Ctrl-C stops everything.")
        while all(p.poll() is None for _, p in cluster.procs):
            time.sleep(1)
        dead = [(n, p.returncode) for n, p in cluster.procs if p.poll() is not None]
        print(f"stopped: {dead} exited; see its log", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()
        if not args.keep:
            drop_db(args.pg, store_db)
            drop_db(args.pg, mlflow_db)


if __name__ == "__main__":
    sys.exit(main())
