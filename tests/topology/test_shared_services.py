"""The scale-out path on real shared services: one PostgreSQL, one `mlflow server` (PostgreSQL
store, proxied artifacts), a bare git remote; every tradeloop process with its own clone and
its own TRADELOOP_HOME, sharing nothing on disk but the prediction-log folder.

    trainer (tradeloop train, then its files deleted)
    deployer ×2 (controller run deployer: leader lease; the leader SIGKILLed mid-rollout)
    gateway ×2 (tradeloop serve on two ports: the same deployment, hot-swapped; one restarted)
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.net import free_port
from tests.pg import fresh_database
from tests.topology.procs import MLFLOW, TRADELOOP, Procs, clean_env, run, wait_for
from tests.training.conftest import shrink
from tradeloop.templates import init_project

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(600)]

NAME = "shared"
V1_COMMIT = f"promote {NAME} v1 to production"
SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
LEASE_TTL = 4.0
# One canary step; the challenger's p99 latency SLO is impossible to meet, and one breach
# rolls back: the rollout's end is decided by the gateways' shared prediction log.
DEPLOYMENT = """\
  shadow: null
  steps:
    - {weight: 50, pause: 1h}
  analysis:
    metric: pnl
    alpha: 0.05
    min_samples: 100
    failure_limit: 0
    max_latency_p99_ms: 0.0001
"""


def _spec_text(spec: Path) -> None:
    shrink(spec, **{"    symbols: [AAA, BBB, CCC, DDD]": "    symbols: [AAA, BBB, CCC, DDD]"})
    text_ = spec.read_text()
    start = text_.index("  shadow: {duration: 2h")
    end = text_.index("  git: {branch: main")
    spec.write_text(text_[:start] + DEPLOYMENT + text_[end:])


def _mark(timings: dict[str, float], t0: float, step: str) -> None:
    timings[step] = round(time.monotonic() - t0, 1)
    print(f"{step}: {timings[step]}s", flush=True)


def _git(cwd: Path, *args: str) -> str:
    return run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args], cwd, clean_env()
    )


class Topology:
    def __init__(self, root: Path, procs: Procs, env: dict[str, str]) -> None:
        self.root, self.procs, self.env = root, procs, env
        self.origin = root / "origin.git"

    def clone(self, who: str) -> tuple[Path, dict[str, str]]:
        """A clone of the remote and a home of its own, as each pod would have."""
        repo = self.root / who / "repo"
        if not repo.exists():
            _git(self.root, "clone", "-q", str(self.origin), str(repo))
        home = self.root / who / "home"
        return repo, {**self.env, "TRADELOOP_HOME": str(home)}

    def tradeloop(self, who: str, *args: str, timeout: float = 120) -> str:
        repo, env = self.clone(who)
        return run([TRADELOOP, *args], repo, env, timeout)

    def deployer(self, who: str) -> int:
        repo, env = self.clone(who)
        argv = [TRADELOOP, "controller", "run", "deployer", "--lease-ttl", str(LEASE_TTL)]
        return self.procs.start(who, [*argv, "--interval", "1"], repo, env).pid

    def gateway(self, who: str, port: int) -> None:
        repo, env = self.clone(who)
        argv = [TRADELOOP, "serve", "--port", str(port), "--gateway-id", who]
        self.procs.start(who, argv, repo, env)


@contextmanager
def start_topology(
    tmp_path: Path, pg_server: str, make_seed: Callable[[Path], Path]
) -> Iterator[Topology]:
    """Fresh databases, an `mlflow server` with proxied artifacts and a bare remote cloned from
    the repository `make_seed(folder)` commits; every process started through the result."""
    procs = Procs(tmp_path / "logs")
    with (
        fresh_database(pg_server, "tl_store") as store_url,
        fresh_database(pg_server, "tl_mlflow") as ml_url,
    ):
        port = free_port()
        artifacts = tmp_path / "mlflow-server" / "artifacts"  # the server's disk, nobody else's
        procs.start(
            "mlflow",
            [
                MLFLOW,
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--backend-store-uri",
                ml_url,
                "--artifacts-destination",
                str(artifacts),
                "--serve-artifacts",
            ],
            tmp_path,
            clean_env(),
        )
        uri = f"http://127.0.0.1:{port}"
        try:
            wait_for(
                "mlflow server",
                lambda: httpx.get(f"{uri}/health", timeout=2).status_code == 200,
                180,
                lambda: procs.log("mlflow"),
            )
            seed = make_seed(tmp_path / "seed")
            _git(tmp_path, "clone", "-q", "--bare", str(seed), str(tmp_path / "origin.git"))
            env = clean_env(
                TRADELOOP_DB_URL=store_url,
                MLFLOW_TRACKING_URI=uri,
                TRADELOOP_ARTIFACT_ROOT="mlflow-artifacts:/tradeloop",
                TRADELOOP_GIT_REMOTE="origin",
                TRADELOOP_PREDICTIONS_DIR=str(tmp_path / "shared" / "predictions"),
            )
            topo = Topology(tmp_path, procs, env)
            topo.mlflow_uri = uri  # type: ignore[attr-defined]
            topo.store_url = store_url  # type: ignore[attr-defined]
            yield topo
        finally:
            procs.close()


def _seed(folder: Path) -> Path:
    spec = init_project(folder, NAME)
    _spec_text(spec)
    _git(spec.parent, "commit", "-q", "-am", "shared-services test spec")
    return spec.parent


@pytest.fixture
def topology(tmp_path: Path, pg_server: str) -> Iterator[Topology]:
    with start_topology(tmp_path, pg_server, _seed) as topo:
        yield topo


def _ready(url: str) -> list[tuple[str, str]] | None:
    r = httpx.get(f"{url}/readyz", timeout=2)
    if r.status_code != 200:
        return None
    return sorted((v["variant"], str(v["serving_version"])) for v in r.json()["variants"])


def _serves(url: str, want: list[tuple[str, str]]) -> bool:
    return _ready(url) == want


def _rows(store_url: str, sql: str) -> list[Any]:
    eng = create_engine(store_url)
    try:
        with eng.connect() as c:
            return list(c.execute(text(sql)))
    finally:
        eng.dispose()


def _infer(url: str, n: int, key: str, one_variant: bool = True) -> float:
    body = {"inputs": [{"name": "input", "shape": [1, n], "datatype": "FP32", "data": [0.001] * n}]}
    r = httpx.post(
        f"{url}/v2/models/{NAME}/infer", json=body, headers={"x-tradeloop-key": key}, timeout=5
    )
    assert r.status_code == 200, r.text
    v2 = float(r.json()["outputs"][0]["data"][0])
    r = httpx.post(
        f"{url}/invocations",
        json={"inputs": [[0.001] * n]},
        headers={"x-tradeloop-key": key},
        timeout=5,
    )
    assert r.status_code == 200, r.text
    if one_variant:  # both protocols answer from the same model
        assert r.json()["predictions"][0]["prediction"] == pytest.approx(v2, abs=1e-6)
    return v2


def _pin_commits(origin: Path) -> list[str]:
    """The subject of each commit on the remote's main that touched the pin, oldest first."""
    out = _git(origin, "log", "--reverse", "--format=%s", "main", "--", "production.yaml")
    return out.splitlines()


def test_two_gateways_two_deployers_on_shared_services(topology: Topology, tmp_path: Path) -> None:
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    store_url: str = topology.store_url  # type: ignore[attr-defined]
    mlflow_uri: str = topology.mlflow_uri  # type: ignore[attr-defined]

    # v1: trained on the trainer's disk, which is then gone: gateways must go through the server
    topology.tradeloop("trainer", "train", "--reason", "v1", timeout=180)
    shutil.rmtree(tmp_path / "trainer")
    _mark(timings, t0, "train v1")

    a_pid = topology.deployer("deployer-a")
    topology.deployer("deployer-b")
    wait_for(
        "v1 pinned on the remote",
        lambda: _pin_commits(topology.origin) == [V1_COMMIT],
        60,
        lambda: topology.procs.log("deployer-a") + topology.procs.log("deployer-b"),
    )
    _mark(timings, t0, "v1 promoted")

    ports = {"gw-1": free_port(), "gw-2": free_port()}
    urls = {g: f"http://127.0.0.1:{p}" for g, p in ports.items()}
    for g, p in ports.items():
        topology.gateway(g, p)
    for g, url in urls.items():
        wait_for(
            f"{g} serving v1",
            lambda url=url: _serves(url, [("champion", "1")]),
            90,
            lambda g=g: topology.procs.log(g),
        )
    n = httpx.get(f"{urls['gw-1']}/v2/models/{NAME}", timeout=5).json()["inputs"][0]["shape"][1]
    answers = {g: _infer(url, n, "AAA") for g, url in urls.items()}
    assert answers["gw-1"] == answers["gw-2"]  # the same bytes, fetched by each on its own
    _mark(timings, t0, "gateways up")

    # the artifacts are on the mlflow server's disk only, and each version's sha256 is recorded
    versions = httpx.get(
        f"{mlflow_uri}/api/2.0/mlflow/model-versions/search",
        params={"filter": f"name='{NAME}'"},
        timeout=10,
    ).json()["model_versions"]
    [v1] = versions
    tags = {tg["key"]: tg["value"] for tg in v1["tags"]}
    source = v1["source"]
    assert source.startswith("mlflow-artifacts:/"), source  # proxied: only the server's disk
    path = source.removeprefix("mlflow-artifacts:").lstrip("/")
    served = httpx.get(
        f"{mlflow_uri}/api/2.0/mlflow-artifacts/artifacts/{path}/model.onnx", timeout=10
    )
    assert served.status_code == 200, served.text[:500]
    assert hashlib.sha256(served.content).hexdigest() == tags["onnx_sha256"]
    assert list((tmp_path / "mlflow-server" / "artifacts").rglob("model.onnx"))

    # v2, and its canary driven by whichever deployer leads
    # more bars have happened: a spec change pushed to the remote, as a user would
    repo, _ = topology.clone("trainer")
    spec = repo / "tradeloop.yaml"
    spec.write_text(spec.read_text().replace("    bars: 1400", "    bars: 1480"))
    _git(repo, "commit", "-q", "-am", "more history")
    _git(repo, "push", "-q", "origin", "main")
    trained = topology.tradeloop("trainer", "train", "--reason", "v2", timeout=180)
    assert "registered version 2" in trained, trained
    _mark(timings, t0, "train v2")
    canary = [("challenger", "2"), ("champion", "1")]

    def state() -> str:
        runs = _rows(
            store_url,
            "select controller, outcome, message from controller_runs order by id desc limit 4",
        )
        return f"{runs}\n{_rows(store_url, 'select version, phase, reason from rollouts')}"

    for g, url in urls.items():
        wait_for(f"{g} serving the canary", lambda url=url: _serves(url, canary), 60, state)
    [(phase, holder)] = _rows(
        store_url,
        "select r.phase, l.holder from rollouts r, leases l "
        "where r.version = '2' and l.name = 'controller:deployer'",
    )
    assert phase == "step"  # the canary step, at 50%
    leader_pid = int(holder.split(":")[1])
    leader = "deployer-a" if leader_pid == a_pid else "deployer-b"
    follower = "deployer-b" if leader == "deployer-a" else "deployer-a"
    _mark(timings, t0, "canary live")

    topology.procs.stop(leader, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(
        "the follower to take the lease",
        lambda: (
            _rows(store_url, "select holder from leases where name = 'controller:deployer'")[0][
                0
            ].split(":")[1]
            != str(leader_pid)
        ),
        LEASE_TTL + 5,
        lambda: topology.procs.log(follower),
    )
    took_over = time.monotonic() - killed
    assert took_over <= LEASE_TTL + 2
    # traffic on both gateways: their prediction-log files, in one shared folder, are what the
    # surviving deployer judges the canary on
    for i in range(30):
        for url in urls.values():
            _infer(url, n, SYMBOLS[i % len(SYMBOLS)], one_variant=False)
    for g, url in urls.items():
        wait_for(
            f"{g} back on v1 alone",
            lambda url=url: _serves(url, [("champion", "1")]),
            60,
            lambda: topology.procs.log(follower),
        )
    _mark(timings, t0, "rolled back")

    # the rollout ended exactly once
    rollouts = _rows(store_url, "select version, phase from rollouts order by version")
    assert [tuple(r) for r in rollouts] == [("1", "promoted"), ("2", "rolled_back")]
    assert _pin_commits(topology.origin) == [V1_COMMIT, f"rollback {NAME} v2 to v1 in production"]
    pin = yaml.safe_load(_git(topology.origin, "show", "main:production.yaml"))
    assert str(pin["version"]) == "1" and [str(v) for v in pin["rejected"]] == ["2"]
    versions = httpx.get(
        f"{mlflow_uri}/api/2.0/mlflow/model-versions/search",
        params={"filter": f"name='{NAME}'"},
        timeout=10,
    ).json()["model_versions"]
    assert sorted(v["version"] for v in versions) == ["1", "2"]
    writers = {
        p.name.split("-")[1] + "-" + p.name.split("-")[2]
        for p in (tmp_path / "shared" / "predictions").glob("date=*/part-*.parquet")
    }
    assert {"gw-1", "gw-2"} <= writers

    # a restarted gateway comes back on the pinned version, from the registry
    topology.procs.stop("gw-1")
    topology.gateway("gw-1", ports["gw-1"])
    wait_for(
        "gw-1 restarted on v1",
        lambda: _serves(urls["gw-1"], [("champion", "1")]),
        90,
        lambda: topology.procs.log("gw-1"),
    )
    assert _infer(urls["gw-1"], n, "AAA") == answers["gw-1"]

    topology.tradeloop("auditor", "audit", "verify")
    _mark(timings, t0, "total")
    print(
        f"timings (s): { {k: round(v, 1) for k, v in timings.items()} }, takeover {took_over:.1f}s"
    )
