"""Which worker of `tradeloop serve --workers N` this process is, if any.

A worker's identity belongs to its process (the supervisor starts one process per worker), so
it is set once, before the gateway is built, and read by `server.build_app`: the prediction
log's writer id and the store's gateway id get a `-w<i>` suffix, only worker 0 serves gRPC and
saves the online state, and the metrics go to prometheus-client's multiprocess files.
With one worker (the default) nothing is set and the gateway is built exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WorkerInfo", "current", "set_current"]


@dataclass(frozen=True)
class WorkerInfo:
    index: int  # 0..count-1; stable across a worker's restarts
    count: int
    private_port: int  # this worker's loopback port for its siblings (bars, online state)
    sibling_ports: tuple[int, ...]  # the other workers' private ports
    catch_up: bool = False  # a restart: copy a live sibling's online state first

    @property
    def primary(self) -> bool:
        """Worker 0 alone writes shared files (online state) and serves gRPC."""
        return self.index == 0

    def suffix(self, name: str) -> str:
        """`name` made unique to this worker: `<name>-w<i>`."""
        return f"{name}-w{self.index}"


_current: WorkerInfo | None = None


def current() -> WorkerInfo | None:
    return _current


def set_current(info: WorkerInfo | None) -> None:
    global _current
    _current = info
