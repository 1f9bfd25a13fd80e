"""Issue 11's check, as a new user would run it: a fresh `tradeloop init --example multi`
project on shared services (PostgreSQL, an `mlflow server` with proxied artifacts, a bare git
remote), the controllers as separate processes (the trainer launching `tradeloop job run`
children, two deployer replicas), two `tradeloop serve` gateways. Every pipeline gets a
promoted v1 that both gateways serve over v2, and SIGKILLing the leading deployer mid-way
changes nothing in the outcome: one version, one rollout and one pin commit per pipeline.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import ProgrammingError

from tests.net import free_port
from tests.topology.procs import TRADELOOP, wait_for
from tests.topology.test_shared_services import Topology, _git, _rows, start_topology
from tradeloop.templates import init_project

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(900)]

NAMES = ("crypto-1d", "equities-1h", "fx-15m")
SMALL = {
    "    bars: 3000": "    bars: 1400",
    "    folds: 3": "    folds: 2",
    "    min_train_bars: 1000": "    min_train_bars: 500",
}


def _seed(folder: Path) -> Path:
    pdir = init_project(folder, example="multi")
    for name in NAMES:
        path = pdir / f"{name}.yaml"
        text = path.read_text()
        for old, new in SMALL.items():
            assert old in text, (name, old)
            text = text.replace(old, new)
        path.write_text(text.replace("  n_estimators: 150", "  n_estimators: 40"))
    _git(folder, "commit", "-q", "-am", "smaller pipelines for the test")
    return folder


@pytest.fixture
def multi(tmp_path: Path, pg_server: str) -> Iterator[Topology]:
    with start_topology(tmp_path, pg_server, _seed) as topo:
        yield topo


def _serves_v1(url: str, name: str) -> bool:
    r = httpx.get(f"{url}/pipelines/{name}/readyz", timeout=3)
    if r.status_code != 200:
        return False
    return [(v["variant"], v["serving_version"]) for v in r.json()["variants"]] == [
        ("champion", "1")
    ]


def _v2_infer(url: str, name: str) -> dict[str, str]:
    meta = httpx.get(f"{url}/v2/models/{name}", timeout=5).json()
    (inp,) = meta["inputs"]
    n = inp["shape"][-1]
    body = {
        "inputs": [{"name": inp["name"], "shape": [1, n], "datatype": "FP32", "data": [0.01] * n}]
    }
    r = httpx.post(f"{url}/v2/models/{name}/infer", json=body, timeout=5)
    assert r.status_code == 200, r.text
    doc = r.json()
    return {"model": doc["model_name"], "version": doc["model_version"]}


def _leases(store_url: str) -> dict[str, str]:
    rows = _rows(
        store_url, "select name, holder from leases where name like 'controller:deployer:%'"
    )
    return {name: holder for name, holder in rows}


def test_every_pipeline_promoted_once_and_served_by_both_gateways(multi: Topology) -> None:
    store_url: str = multi.store_url  # type: ignore[attr-defined]
    t0 = time.monotonic()
    repo, env = multi.clone("trainer")
    multi.procs.start(
        "trainer",
        [TRADELOOP, "controller", "run", "trainer", "--lease-ttl", "4", "--interval", "2"],
        repo,
        env,
    )
    pids = {multi.deployer("deployer-a"): "deployer-a"}
    time.sleep(3)  # deployer-a takes the leases first, so killing it is a takeover
    pids[multi.deployer("deployer-b")] = "deployer-b"
    ports = [free_port(), free_port()]
    for i, port in enumerate(ports):
        multi.gateway(f"gw-{i + 1}", port)
    urls = [f"http://127.0.0.1:{p}" for p in ports]

    def promoted() -> list[str]:
        try:
            rows = _rows(store_url, "select model_name from rollouts where phase = 'promoted'")
        except ProgrammingError:  # no process has made the tables yet
            return []
        return sorted(r[0] for r in rows)

    first = wait_for(
        "the first pipeline's v1 to be promoted",
        promoted,
        600,
        lambda: multi.procs.log("trainer") + multi.procs.log("deployer-a"),
    )
    leases = _leases(store_url)
    leading = {int(h.split(":")[1]) for h in leases.values()}
    assert leading <= set(pids), (leases, pids)
    victim = pids[max(leading, key=lambda pid: sum(str(pid) in h for h in leases.values()))]
    multi.procs.stop(victim, signal.SIGKILL)  # mid-way: other pipelines not promoted yet
    print(f"killed {victim} after {first} promoted, {time.monotonic() - t0:.0f}s", flush=True)

    for name in NAMES:
        for url in urls:
            wait_for(
                f"{url} to serve {name} v1",
                lambda url=url, name=name: _serves_v1(url, name),
                600,
                lambda: "".join(
                    multi.procs.log(n) for n in ("trainer", "deployer-a", "deployer-b")
                ),
            )
    for name in NAMES:
        answers = [_v2_infer(url, name) for url in urls]
        assert answers == [{"model": name, "version": "1"}] * 2

    rollouts = _rows(
        store_url, "select model_name, version, phase from rollouts order by model_name"
    )
    assert [tuple(r) for r in rollouts] == [(n, "1", "promoted") for n in NAMES]
    jobs = _rows(store_url, "select pipeline, status from training_jobs where status = 'succeeded'")
    assert sorted(r[0] for r in jobs) == list(NAMES)  # trained by job processes, once each
    origin = multi.origin
    for name in NAMES:
        subjects = _git(
            origin, "log", "--format=%s", "main", "--", f"production/{name}.yaml"
        ).splitlines()
        assert subjects == [f"promote {name} v1 to production"], subjects
    from mlflow import MlflowClient

    client = MlflowClient(multi.mlflow_uri, multi.mlflow_uri)  # type: ignore[attr-defined]
    for name in NAMES:
        assert [v.version for v in client.search_model_versions(f"name='{name}'")] == ["1"]
    multi.tradeloop("auditor", "audit", "verify")
    print(f"done in {time.monotonic() - t0:.0f}s", flush=True)
