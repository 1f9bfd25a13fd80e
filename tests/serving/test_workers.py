"""`serve --workers N`: real worker processes on loopback (`workers_app.py`), no mocks."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl
import pytest

from tradeloop.clock import SimulatedClock
from tradeloop.data.simulator import simulate
from tradeloop.serving.source import DirectorySource
from tradeloop.spec import SimulatorSpec, Spec
from tradeloop.store import Store
from tradeloop.store.deployments import Deployed, apply

APP = Path(__file__).with_name("workers_app.py")
NAMES = Spec(name="t").feature_names
W1 = [0.5, -0.25, 0.1, 2.0, 0.01, 3.0, -0.2, 0.05, 0.3]
W2 = [-w for w in W1]
ROW = [0.01, -0.02, 0.3, 0.05, 0.001, 0.02, 0.4, -0.1, 0.2]
BODY = {"dataframe_split": {"columns": NAMES, "data": [ROW]}}


def expected(weights: list[float]) -> float:
    z = float(np.array(ROW, np.float32) @ np.array(weights, np.float32))
    return 1 / (1 + np.exp(-z))


@dataclass
class Workers:
    root: Path
    proc: subprocess.Popen[bytes]
    url: str

    def status(self) -> list[dict[str, Any]]:
        return list(json.loads((self.root / "workers.json").read_text()))

    def private(self, index: int) -> str:
        return f"http://127.0.0.1:{self.status()[index]['private_port']}"

    def wait_serving(self, n: int, old: int | None = None, timeout: float = 60) -> None:
        """Until `n` workers serve (none of them with pid `old`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log()
            try:
                st = self.status()
            except (FileNotFoundError, ValueError):
                st = []
            if sum(1 for w in st if w["serving"] and w["pid"] != old) == n:
                return
            time.sleep(0.05)
        raise AssertionError(f"workers not serving after {timeout}s: {self.log()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def log(self) -> str:
        return (self.root / "err.log").read_text()


@pytest.fixture
def start(
    tmp_path: Path, onnx_linear: Callable[..., bytes], clock: SimulatedClock
) -> Iterator[Callable[..., Workers]]:
    source = DirectorySource(tmp_path / "models")
    source.put("demo", "1", onnx_linear(W1), NAMES)
    source.put("demo", "2", onnx_linear(W2), NAMES)
    store = Store.open("sqlite:///" + str(tmp_path / "db.sqlite"), clock)
    deploy(store, "1")
    started: list[Workers] = []

    def _start(n: int = 2, wait: bool = True) -> Workers:
        err = (tmp_path / "err.log").open("wb")
        proc = subprocess.Popen(  # TMPDIR: a killed supervisor's metrics folder stays here
            [sys.executable, str(APP), str(tmp_path), str(n)],
            stderr=err,
            env={**os.environ, "TMPDIR": str(tmp_path)},
        )
        deadline = time.monotonic() + 30
        while not (tmp_path / "port").exists() and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        port = (tmp_path / "port").read_text() if (tmp_path / "port").exists() else "0"
        w = Workers(tmp_path, proc, f"http://127.0.0.1:{port}")
        started.append(w)
        if wait:
            w.wait_serving(n)
        return w

    yield _start
    for w in started:  # a failed test too: a graceful stop, so no worker outlives the test
        try:
            w.stop()
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait(10)
    store.close()


def deploy(store: Store, version: str) -> None:
    apply(
        store, "demo", [Deployed("demo", "champion", version, "live", 100)], actor="t", reason="t"
    )


def total(metrics: str, route: str) -> float:
    pattern = rf'^tradeloop_requests_total{{[^}}]*route="{re.escape(route)}"[^}}]*}} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, metrics, re.M))


def test_two_workers_answer_and_metrics_add_up(start: Callable[..., Workers]) -> None:
    w = start(2)
    k = 120
    for _ in range(k):  # a new connection each time: the kernel hands them to either worker
        r = httpx.post(w.url + "/invocations", json=BODY)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"][0]["prediction"] == pytest.approx(expected(W1), rel=1e-5)
    for i in (0, 1):  # every worker's /metrics is the aggregate of both
        metrics = httpx.get(w.private(i) + "/metrics").text
        assert total(metrics, "/invocations") == k
        assert "tradeloop_ready 1.0" in metrics
        count = re.search(r"^tradeloop_prediction_value_count{[^}]*} (\S+)$", metrics, re.M)
        assert count is not None and float(count.group(1)) == k
    assert w.stop() == 0  # graceful: every prediction-log record is written
    files = list((w.root / "state" / "predictions").rglob("*.parquet"))
    assert {re.search(r"part-(gw-w\d)-", f.name).group(1) for f in files} == {"gw-w0", "gw-w1"}  # type: ignore[union-attr]
    assert pl.read_parquet(files).height == k


def bars_json(n: int = 60) -> list[dict[str, Any]]:
    frame = simulate(SimulatorSpec(symbols=["AAA", "BBB"], bars=n, seed=3), timedelta(hours=1))
    rows = frame.sort("timestamp", "symbol").to_dicts()
    return [{**r, "timestamp": r["timestamp"].isoformat()} for r in rows]


def signals(url: str) -> dict[str, Any]:
    r = httpx.get(url + "/v1/signals/AAA")
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return {k: doc[k] for k in ("feature_timestamp", "features", "prediction")}


def test_a_bar_sent_to_one_worker_reaches_every_worker(start: Callable[..., Workers]) -> None:
    w = start(2)
    bars = bars_json()
    for i in range(0, len(bars), 10):  # new connections: the batches land on either worker
        r = httpx.post(w.url + "/v1/bars", json={"bars": bars[i : i + 10]})
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 10
    first, second = signals(w.private(0)), signals(w.private(1))
    assert first == second
    assert first["feature_timestamp"] == bars[-1]["timestamp"]
    # sent to a worker's own port, a bar is applied there only (that is how siblings forward)
    later = bars_json(61)[-2:]
    assert httpx.post(w.private(1) + "/v1/bars", json={"bars": later}).status_code == 200
    assert signals(w.private(0))["feature_timestamp"] == bars[-1]["timestamp"]
    assert signals(w.private(1))["feature_timestamp"] == later[-1]["timestamp"]


def test_a_killed_worker_is_restarted_with_the_online_state(
    start: Callable[..., Workers],
) -> None:
    w = start(2)
    bars = bars_json()
    assert httpx.post(w.url + "/v1/bars", json={"bars": bars}).status_code == 200
    victim = w.status()[1]["pid"]
    os.kill(victim, signal.SIGKILL)
    w.wait_serving(2, old=victim)  # index 1 again, a new process
    assert f"worker 1 (pid {victim}) exited with code -9; restarting it" in w.log()
    # the new worker copied its sibling's state (the saved file is worker 0's, every 5 s)
    assert signals(w.private(1)) == signals(w.private(0))
    for _ in range(20):
        assert httpx.post(w.url + "/invocations", json=BODY).status_code == 200
    metrics = httpx.get(w.url + "/metrics").text
    assert total(metrics, "/invocations") == 20
    assert "tradeloop_ready 1.0" in metrics  # livemin: the dead worker's 1 no longer counts
    assert w.stop() == 0


def test_hot_swap_under_load_fails_no_request(
    start: Callable[..., Workers], tmp_path: Path, clock: SimulatedClock
) -> None:
    w = start(2)
    failures: list[str] = []
    answers: set[float] = set()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            with httpx.Client() as c:  # a few requests per connection, then a new one
                for _ in range(5):
                    r = c.post(w.url + "/invocations", json=BODY)
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text}")
                    else:
                        answers.add(round(r.json()["predictions"][0]["prediction"], 5))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        store = Store.open("sqlite:///" + str(tmp_path / "db.sqlite"), clock)
        deploy(store, "2")
        store.close()
        deadline = time.monotonic() + 20
        new = round(expected(W2), 5)
        while time.monotonic() < deadline:
            both = [httpx.post(w.private(i) + "/invocations", json=BODY) for i in (0, 1)]
            if all(round(r.json()["predictions"][0]["prediction"], 5) == new for r in both):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("a worker still serves v1")
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failures == []
    assert answers == {round(expected(W1), 5), round(expected(W2), 5)}
    assert w.stop() == 0


def test_workers_that_cannot_start_fail_with_a_message(
    start: Callable[..., Workers], tmp_path: Path
) -> None:
    (tmp_path / "fail").write_text("")
    w = start(2, wait=False)
    assert w.proc.wait(60) != 0
    assert "before it served" in w.log()


def _gone(pid: int) -> bool:
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def test_workers_stop_when_the_supervisor_is_killed(start: Callable[..., Workers]) -> None:
    w = start(2)
    pids = [x["pid"] for x in w.status()]
    w.proc.kill()  # no graceful stop from the supervisor: each worker sees it gone
    w.proc.wait(10)
    deadline = time.monotonic() + 20
    while not all(_gone(p) for p in pids):
        assert time.monotonic() < deadline, "a worker outlived its supervisor"
        time.sleep(0.1)
    with pytest.raises(httpx.ConnectError):
        httpx.get(w.url + "/healthz")
    # its metrics folder is left behind (nobody ran the supervisor's cleanup)
    assert len(list(w.root.glob("tradeloop-metrics-*"))) == 1


def test_a_graceful_stop_removes_the_metrics_folder(start: Callable[..., Workers]) -> None:
    w = start(2)
    assert len(list(w.root.glob("tradeloop-metrics-*"))) == 1
    assert w.stop() == 0
    assert list(w.root.glob("tradeloop-metrics-*")) == []


def test_grpc_is_served_by_worker_zero_only(start: Callable[..., Workers], tmp_path: Path) -> None:
    import tritonclient.grpc as tc
    from tests.net import free_port

    port = free_port()
    (tmp_path / "grpc_port").write_text(str(port))
    w = start(2)  # worker 1 does not try the port (it would fail: it is not shared)
    with tc.InferenceServerClient(f"127.0.0.1:{port}") as client:
        assert client.is_server_live()
        x = np.array([ROW], np.float32)
        inp = tc.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        out = client.infer("demo", [inp]).as_numpy("prediction")
    assert float(out[0]) == pytest.approx(expected(W1), rel=1e-5)
    assert w.stop() == 0
