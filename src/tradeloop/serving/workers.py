"""`tradeloop serve --workers N`: N gateway processes on one port, supervised.

The supervisor (the `serve` process) binds the listening socket once and every worker
inherits it, so the kernel spreads connections over them; it also binds one private loopback
socket per worker (`siblings`: bars and online state between workers). Each worker is a
whole gateway built in its own process (`multiprocessing` spawn: nothing is forked from a
process running threads), and what they share lives outside any one of them:

- deployment state and hot swap: the store, which every worker's `ModelManager` polls;
- metrics: prometheus-client's multiprocess files in a fresh directory per run
  (`worker_metrics`); `/metrics` on any worker is every worker's;
- online features: each bar is forwarded to every worker (`siblings`); worker 0 alone saves
  `online_features.json`;
- prediction log: each worker writes its own files, `<gateway-id>-w<i>` (also its name in the
  store's gateway reports);
- gRPC (`serving.grpc_port`): worker 0 only; the port is not shared.

The supervisor restarts a worker that dies (after it had started; its live gauges are marked
dead), forwards SIGINT/SIGTERM as SIGTERM so each worker stops gracefully (prediction log
flushed, online state saved), and fails with a message when workers cannot start.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from tradeloop.errors import BadInput, RuntimeFailure
from tradeloop.serving import worker_metrics
from tradeloop.serving.worker_context import WorkerInfo, set_current

if TYPE_CHECKING:
    from starlette.applications import Starlette

log = logging.getLogger(__name__)

__all__ = ["WorkerPlan", "run_workers"]

MAX_START_FAILURES = 5  # a worker failing this many starts in a row stops the gateway
STOP_TIMEOUT = 30.0  # seconds a worker gets to stop gracefully before it is killed


@dataclass(frozen=True)
class WorkerPlan:
    """What every worker runs. `build` is called in the worker (so it must pickle: a module
    level function or a `functools.partial` of one) and returns the gateway's ASGI app."""

    build: Callable[[], Any]
    host: str
    port: int
    workers: int
    options: dict[str, Any] = field(default_factory=dict)  # uvicorn_config's overrides (TLS)
    start_timeout: float = 180.0
    status_file: Path | None = None  # kept up to date: each worker's pid, port, serving


def bind(host: str, port: int) -> socket.socket:
    """The listening socket the workers share (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BadInput(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker_main(
    plan: WorkerPlan, info: WorkerInfo, shared: socket.socket, private: socket.socket, ready: Any
) -> None:
    """One worker: build the gateway, serve both sockets until SIGTERM/SIGINT."""
    from tradeloop.serving.server import GracefulServer, uvicorn_config
    from tradeloop.serving.siblings import Siblings

    set_current(info)
    app = Siblings(plan.build(), info, private)
    app.state.freeze_gc = True
    sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))  # as server.serve does
    config = uvicorn_config(cast("Starlette", app), plan.host, plan.port, **plan.options)
    server = GracefulServer(config)

    parent = os.getppid()

    def watch() -> None:
        """Tell the supervisor once serving; stop gracefully if the supervisor dies (killed:
        nobody would stop this worker, which holds the port)."""
        while not server.started and not server.should_exit:
            time.sleep(0.02)
        if server.started:
            ready.send(os.getpid())
        while not server.should_exit:
            if os.getppid() != parent:
                log.error("worker %d: the supervisor is gone; stopping", info.index)
                server.should_exit = True
            time.sleep(0.5)

    threading.Thread(target=watch, name="worker-watch", daemon=True).start()
    server.run(sockets=[shared])
    if not server.started:
        sys.exit(3)  # the lifespan failed: uvicorn logged why


@dataclass
class _Slot:
    info: WorkerInfo
    private: socket.socket
    process: BaseProcess | None = None
    ready: Connection | None = None
    started: bool = False
    since: float = 0.0
    failures: int = 0


class _Supervisor:
    def __init__(self, plan: WorkerPlan, shared: socket.socket) -> None:
        self.plan = plan
        self.shared = shared
        self.ctx = multiprocessing.get_context("spawn")
        self.stopping = False
        privates = [bind("127.0.0.1", 0) for _ in range(plan.workers)]
        ports = [s.getsockname()[1] for s in privates]
        self.slots = [
            _Slot(WorkerInfo(i, plan.workers, p, tuple(q for q in ports if q != p)), privates[i])
            for i, p in enumerate(ports)
        ]

    def start(self, slot: _Slot) -> None:
        receiver, sender = self.ctx.Pipe(duplex=False)
        process = self.ctx.Process(
            target=_worker_main,
            args=(self.plan, slot.info, self.shared, slot.private, sender),
            name=f"tradeloop-worker-{slot.info.index}",
        )
        process.start()
        sender.close()
        slot.process, slot.ready, slot.started, slot.since = (
            process,
            receiver,
            False,
            time.monotonic(),
        )

    def run(self) -> None:
        for slot in self.slots:
            self.start(slot)
        while not self.stopping:
            waits: list[Any] = []
            for s in self.slots:
                if s.process is not None:
                    waits.append(s.process.sentinel)
                if not s.started and s.ready is not None:
                    waits.append(s.ready)
            wait(waits, timeout=0.5)
            if not self.stopping:
                for slot in self.slots:
                    self._check(slot)

    def _check(self, slot: _Slot) -> None:
        process = slot.process
        if process is None:
            return
        index = slot.info.index
        if not slot.started and slot.ready is not None and slot.ready.poll():
            try:
                slot.ready.recv()
                slot.started, slot.failures = True, 0
                log.info("worker %d (pid %d) is serving", index, process.pid)
                self.write_status()
            except EOFError:
                pass
        if process.is_alive():
            if not slot.started and time.monotonic() - slot.since > self.plan.start_timeout:
                log.error("worker %d did not start within %.0f s", index, self.plan.start_timeout)
                process.kill()
            return
        pid = process.pid
        assert pid is not None
        worker_metrics.mark_dead(pid, self.metrics_dir)
        if self.stopping:  # a stop signal reached the worker first (Ctrl-C: the whole group)
            return
        code = process.exitcode
        process.close()
        slot.process = None
        if slot.ready is not None:
            slot.ready.close()
        if not slot.started:
            slot.failures += 1
            if slot.failures >= MAX_START_FAILURES or not any(s.started for s in self.slots):
                raise RuntimeFailure(
                    f"gateway worker {index} exited with code {code} before it served "
                    f"(failure {slot.failures}); its error is logged above"
                )
        log.warning("worker %d (pid %d) exited with code %s; restarting it", index, pid, code)
        time.sleep(min(0.2 * 2**slot.failures, 10.0))
        slot.info = replace(slot.info, catch_up=True)
        self.start(slot)
        self.write_status()

    def write_status(self) -> None:
        if self.plan.status_file is None:
            return
        doc = [
            {
                "index": s.info.index,
                "pid": s.process.pid if s.process else None,
                "private_port": s.info.private_port,
                "serving": s.started,
            }
            for s in self.slots
        ]
        tmp = self.plan.status_file.with_name(self.plan.status_file.name + ".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.plan.status_file)

    @property
    def metrics_dir(self) -> Path:
        return Path(os.environ[worker_metrics.ENV])

    def stop(self) -> None:
        """SIGTERM to every worker, then wait for each to stop (killed after STOP_TIMEOUT)."""
        self.stopping = True
        live = [s.process for s in self.slots if s.process is not None and s.process.is_alive()]
        for p in live:
            if p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for p in live:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                log.error(
                    "worker pid %s did not stop within %.0f s; killing it", p.pid, STOP_TIMEOUT
                )
                p.kill()
                p.join(5)
        for s in self.slots:
            s.private.close()


def run_workers(plan: WorkerPlan, on_ready: Callable[[int], None] | None = None) -> None:
    """Serve with `plan.workers` processes until SIGINT/SIGTERM (RuntimeFailure when workers
    cannot start). `on_ready(port)` runs once the socket is bound (the port, if 0 was asked)."""
    if plan.workers < 2:
        raise BadInput(f"run_workers needs 2 or more workers, got {plan.workers}")
    metrics_dir = worker_metrics.fresh_dir()
    previous = os.environ.get(worker_metrics.ENV)
    os.environ[worker_metrics.ENV] = str(metrics_dir)  # inherited by each worker at spawn
    shared = bind(plan.host, plan.port)
    supervisor = _Supervisor(plan, shared)

    def on_signal(sig: int, frame: FrameType | None) -> None:
        supervisor.stopping = True

    handlers = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if on_ready is not None:
            on_ready(shared.getsockname()[1])
        supervisor.run()
    finally:
        supervisor.stop()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        shared.close()
        worker_metrics.remove_dir(metrics_dir)
        if previous is None:
            os.environ.pop(worker_metrics.ENV, None)
        else:
            os.environ[worker_metrics.ENV] = previous
