"""The process `tradeloop up` runs, assembled in-process on a SimulatedClock: after it trains,
serves real trading traffic and the monitor evaluates, its one `/metrics` holds every series
that `deploy/prometheus/rules.yml` and the Grafana dashboards read.

This is what makes the rules and dashboards honest: the names come from scraping the running
gateway over HTTP, not from registries the test builds itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.monitoring.test_deploy import metric_names, panels, recorded_names, rules
from tests.serving.conftest import Live, start_live
from tests.training.conftest import shrink

from tradeloop.clock import SimulatedClock
from tradeloop.control.assembly import Process, assemble
from tradeloop.control.status_report import monitor_document
from tradeloop.project import Project
from tradeloop.templates import git as _git
from tradeloop.templates import git_commit, init_project

TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))
HOUR = timedelta(hours=1)
TRAIN_AT = 900  # hours of history before the clock starts: enough to train v1 (shrunk spec)
TRADE = 120  # hours of trading traffic before the monitor is asked to evaluate


class _Receiver(BaseHTTPRequestHandler):
    """Accepts every webhook (the alert routes need somewhere to deliver)."""

    def do_POST(self) -> None:  # http.server's name
        n = int(self.headers.get("content-length") or 0)
        self.rfile.read(n)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@dataclass
class Up:
    proc: Process
    live: Live
    clock: SimulatedClock
    bars: pl.DataFrame

    @property
    def gateway(self) -> Any:
        assert self.proc.app is not None
        return self.proc.app.state.gateway

    def settle(self) -> None:
        """Make the prediction log current, run what is due, pick up deployments."""
        self.gateway.shadow.join(timeout=30)
        self.gateway.predlog.flush(timeout=30)
        self.proc.manager.run_once()
        self.gateway.manager.refresh()

    def hour(self, client: httpx.Client, signals: bool = True) -> None:
        now = self.clock.now()
        rows = self.bars.filter(pl.col("timestamp") == now)
        body = [
            {**r, "timestamp": r["timestamp"].isoformat()}
            for r in rows.select(
                "symbol", "timestamp", "open", "high", "low", "close", "volume"
            ).to_dicts()
        ]
        assert client.post("/v1/bars", json={"bars": body}).status_code == 200
        if signals:
            for sym in rows["symbol"].to_list():
                r = client.get(f"/v1/signals/{sym}")
                assert r.status_code in (200, 409), r.text


def _up(tmp_path: Path, hook: str, **subs: str) -> Up:
    spec = init_project(tmp_path / "repo", "live")
    shrink(spec)
    text = spec.read_text().replace("  interval: 1h", "  interval: 2h")
    for old, new in subs.items():
        assert old in text, old
        text = text.replace(old, new)
    text = text.replace(
        "  alerts:\n", f"  webhooks:\n    ops: {{url: '{hook}'}}\n  alerts:\n", 1
    ).replace("routes: [log]}", "routes: [log, ops]}")
    spec.write_text(text)
    root = spec.parent
    _git(root, "add", "tradeloop.yaml")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "spec")
    loaded = Project.load(root)
    start = loaded.spec.data.simulator.start
    clock = SimulatedClock(start + TRAIN_AT * HOUR)
    project = Project(loaded.spec, root / "tradeloop.yaml", clock)
    proc = assemble(project, gateway=True)
    assert proc.app is not None
    live = start_live(proc.app)
    bars = proc.world.bars(start + (TRAIN_AT + TRADE + 10) * HOUR)
    return Up(proc, live, clock, bars)


def samples(url: str) -> list[Any]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def scrape(url: str) -> set[str]:
    return {s.name for s in samples(url)}


def gauge(url: str, name: str, **labels: str) -> float | None:
    found = [s.value for s in samples(url) if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) <= 1, found
    return found[0] if found else None


def status_json(root: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))}
    r = subprocess.run(
        [TRADELOOP, "status", "--json"], cwd=root, env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def wanted() -> set[str]:
    """Every tradeloop series the rules and dashboards read (recording rules excluded)."""
    names: set[str] = set()
    for r in rules():
        names |= metric_names(r["expr"])
    for _, p in panels():
        for t in p.get("targets", []):
            names |= metric_names(t["expr"])
    return names - recorded_names()


@pytest.mark.slow
def test_up_exposes_every_series_the_rules_and_dashboards_read(
    tmp_path: Path, receiver: str
) -> None:
    up = _up(tmp_path, receiver)
    try:
        up.settle()  # trains v1, deploys it
        assert up.gateway.manager.refresh().ready, "v1 is not serving"
        with httpx.Client(base_url=up.live.url, timeout=30) as client:
            for _ in range(TRADE):
                up.hour(client)
                up.clock.advance(HOUR)
                up.settle()
        deadline = time.monotonic() + 30
        missing = wanted() - scrape(up.live.url)
        while missing and time.monotonic() < deadline:
            up.clock.advance(HOUR)
            up.settle()
            missing = wanted() - scrape(up.live.url)
        assert not missing, f"no series for {sorted(missing)}"
        # one source of alert values: the report computes what the monitor published
        values = monitor_document(up.proc.project)["values"]
        url = up.live.url
        assert values["drift_share"] is not None
        share = gauge(url, "tradeloop_drift_share", model="live", variant="champion")
        assert share == values["drift_share"]
        assert values["hit_rate"] is not None
        hit = gauge(url, "tradeloop_perf_hit_rate", model="live", variant="champion")
        assert hit == values["hit_rate"]
    finally:
        up.live.stop()
        up.proc.close()


@pytest.mark.slow
def test_a_tiny_latency_slo_fires_in_status_and_resolves_when_git_relaxes_it(
    tmp_path: Path, receiver: str
) -> None:
    up = _up(
        tmp_path,
        receiver,
        **{
            "  interval: 2h": "  interval: 1m",
            "slos: {latency_p99_ms: 5, error_rate: 0.01}": (
                "slos: {latency_p99_ms: 0.0001, error_rate: 0.01, window: 1h}"
            ),
        },
    )
    root = up.proc.project.root
    try:
        up.settle()  # trains v1, deploys it; the monitor sees no traffic yet
        assert up.gateway.manager.refresh().ready
        n = len(up.proc.project.spec.features)
        with httpx.Client(base_url=up.live.url, timeout=30) as client:
            for i in range(30):
                r = client.post("/invocations", json={"inputs": [[0.001 * i] * n]})
                assert r.status_code == 200, r.text
        up.clock.advance(timedelta(minutes=2))
        up.settle()
        firing = {a["rule"]: a for a in status_json(root)["alerts"]}
        assert firing["slo_latency_p99_ms"]["state"] == "firing"
        assert firing["slo_latency_p99_ms"]["value"] > 0.0001
        assert "slo_error_rate" not in firing  # every request succeeded
        p99 = gauge(up.live.url, "tradeloop_slo_latency_p99_ms", model="live", variant="champion")
        assert p99 == firing["slo_latency_p99_ms"]["value"]
        errors = gauge(up.live.url, "tradeloop_slo_error_rate", model="live", variant="champion")
        assert errors == 0.0

        spec = root / "tradeloop.yaml"
        spec.write_text(spec.read_text().replace("latency_p99_ms: 0.0001", "latency_p99_ms: 1e4"))
        git_commit(root, "relax the latency SLO", "tradeloop.yaml")
        up.clock.advance(timedelta(minutes=2))
        up.settle()
        assert "slo_latency_p99_ms" not in {a["rule"] for a in status_json(root)["alerts"]}
    finally:
        up.live.stop()
        up.proc.close()
