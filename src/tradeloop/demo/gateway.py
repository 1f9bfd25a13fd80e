"""The real gateway (uvicorn on a loopback port) in a background thread, for the demo."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from tradeloop.control.world import World
from tradeloop.errors import RuntimeFailure
from tradeloop.project import Project
from tradeloop.serving.predlog_compact import compact

SHADOW_TIMEOUT_S = 10.0
PREDLOG_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DemoGateway:
    """`with DemoGateway(project, world) as gw:` serves on `gw.url` until the block ends."""

    def __init__(self, project: Project, world: World) -> None:
        import uvicorn

        from tradeloop.serving.mlflow_source import project_app
        from tradeloop.serving.server import uvicorn_config

        self.app = project_app(
            project, world.registry, poll_interval=3600.0, predlog_flush_interval=0.2
        )
        self.predictions_dir = project.predictions_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn_config(self.app, "127.0.0.1", self.port))
        self.thread = threading.Thread(target=self.server.run, name="gateway", daemon=True)

    def __enter__(self) -> DemoGateway:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeFailure("the gateway did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway

    def sync(self) -> None:
        """Make the prediction log current before the controllers read it: the shadow
        scorer's queued copies first (they log into the prediction log), then the log."""
        gw = self.gateway
        if not gw.shadow.join(timeout=SHADOW_TIMEOUT_S):
            raise RuntimeFailure(f"the shadow scorer did not catch up in {SHADOW_TIMEOUT_S:.0f} s")
        gw.predlog.flush(timeout=PREDLOG_TIMEOUT_S)
        compact(self.predictions_dir, min_parts=4)
