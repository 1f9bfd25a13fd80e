"""End to end with the real servers from Debian (`prometheus`, `prometheus-alertmanager`):
Prometheus scrapes a running `tradeloop up` with the shipped config and rules and sends its
alerts to Alertmanager, which forwards them to a webhook receiver in this test.

The condition driven is a spec in git that does not validate: every controller parks, the
`tradeloop_controller_parked` gauge goes to 1, TradeloopControllerParked fires and arrives at
the receiver; a fixing commit un-parks them and the alert arrives again, resolved. Only the
addresses and intervals of the shipped files are changed (seconds instead of minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.net import free_port
from tests.training.conftest import shrink
from tradeloop.templates import git_commit, init_project

ROOT = Path(__file__).resolve().parents[2]
TRADELOOP = str(Path(sys.executable).with_name("tradeloop"))
ALERT = "TradeloopControllerParked"


def _binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the end-to-end test: apt-get install {package}")
        pytest.skip(f"{name} is not installed (apt-get install {package}); CI runs this")
    return path


class Receiver:
    """Alertmanager's webhook bodies, as they arrive."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with me.lock:
                    me.bodies.append(body)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, status: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for b in self.bodies:
                    if b["status"] == status and b["groupLabels"].get("alertname") == ALERT:
                        return b
            time.sleep(0.2)
        raise AssertionError(f"no {status} {ALERT} arrived; got {self.bodies}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def procs() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
        out = log.open("wb")
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, **kw)
        started.append(p)
        return p

    yield start
    for p in reversed(started):
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} never answered: {log.read_text()[-3000:]}")


def _configs(tmp: Path, gateway: int, am: int, receiver: str) -> tuple[Path, Path]:
    prom = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    prom["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    prom["rule_files"] = [str(ROOT / "deploy" / "prometheus" / "rules.yml")]
    prom["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{am}"]}]
    prom["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{gateway}"]}]
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(prom))
    amc = yaml.safe_load((ROOT / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    amc["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    amc["receivers"][0]["webhook_configs"][0]["url"] = receiver
    (tmp / "alertmanager.yml").write_text(yaml.safe_dump(amc))
    return tmp / "prometheus.yml", tmp / "alertmanager.yml"


@pytest.mark.slow
def test_a_parked_controller_alerts_through_prometheus_and_alertmanager(
    tmp_path: Path, receiver: Receiver, procs: Callable[..., subprocess.Popen[bytes]]
) -> None:
    prometheus = _binary("prometheus", "prometheus")
    alertmanager = _binary("prometheus-alertmanager", "prometheus-alertmanager")
    spec = init_project(tmp_path / "repo", "e2e")
    shrink(spec)
    root = spec.parent
    git_commit(root, "shrink", "tradeloop.yaml")
    good = spec.read_text()
    spec.write_text(good.replace("  interval: 1h", "  interval: -1h"))
    git_commit(root, "a spec that does not validate", "tradeloop.yaml")
    spec.write_text(good)  # the working tree stays valid: git's head is what the loop follows

    gw, am, prom = free_port(), free_port(), free_port()
    prom_cfg, am_cfg = _configs(tmp_path, gw, am, receiver.url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRADELOOP_", "MLFLOW_"))}
    up_log = tmp_path / "up.log"
    up = procs([TRADELOOP, "up", "--port", str(gw)], up_log, cwd=root, env=env)
    _wait_http(f"http://127.0.0.1:{gw}/metrics", up, up_log)
    am_log = tmp_path / "am.log"
    amp = procs(
        [
            alertmanager,
            f"--config.file={am_cfg}",
            f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{am}",
            "--cluster.listen-address=",
        ],
        am_log,
    )
    _wait_http(f"http://127.0.0.1:{am}/-/ready", amp, am_log)
    prom_log = tmp_path / "prom.log"
    pp = procs(
        [
            prometheus,
            f"--config.file={prom_cfg}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom}",
        ],
        prom_log,
    )
    _wait_http(f"http://127.0.0.1:{prom}/-/ready", pp, prom_log)

    fired = receiver.wait_for("firing", timeout=120)
    parked = {a["labels"]["controller"] for a in fired["alerts"] if a["status"] == "firing"}
    assert parked <= {"trainer", "deployer", "monitor"} and parked
    assert {a["labels"]["reason"] for a in fired["alerts"]} == {"invalid_spec"}
    assert all(a["labels"]["severity"] == "critical" for a in fired["alerts"])

    git_commit(root, "fix the interval", "tradeloop.yaml")
    resolved = receiver.wait_for("resolved", timeout=240)
    assert all(a["status"] == "resolved" for a in resolved["alerts"])
