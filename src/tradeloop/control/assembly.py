"""How a process is put together: its controllers, their manager and one metrics registry.

`tradeloop up` and `controller run` build the same parts here, and tests build them the same
way in-process (with a SimulatedClock), so what a test scrapes is what production exposes.
Everything a process measures goes into one `CollectorRegistry`: the gateway's series, the
controllers' and the monitor's gauges, all on one `/metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from tradeloop.control.deployer import DeployerController
from tradeloop.control.manager import Manager
from tradeloop.control.metrics import ControllerMetrics
from tradeloop.control.monitor import MonitorController
from tradeloop.control.reconciler import Reconciler
from tradeloop.control.trainer import TrainerController
from tradeloop.control.world import World
from tradeloop.errors import BadInput
from tradeloop.monitoring.gauges import MonitorGauges
from tradeloop.monitoring.slo import RequestWindow, request_counts
from tradeloop.project import Project

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["CONTROLLERS", "Process", "assemble"]

CONTROLLERS = ("trainer", "deployer", "monitor")


@dataclass
class Process:
    """The parts of one tradeloop process."""

    project: Project
    world: World
    registry: CollectorRegistry
    manager: Manager
    app: Starlette | None = None

    def close(self) -> None:
        """Stop the controllers' background work (the monitor's notifier)."""
        for c in self.manager.controllers:
            close = getattr(c, "close", None)
            if close is not None:
                close()


def _controllers(
    names: Sequence[str], project: Project, gauges: MonitorGauges, requests: RequestWindow | None
) -> list[Reconciler]:
    interval = project.spec.monitoring.interval
    make: dict[str, Callable[[], Reconciler]] = {
        "trainer": TrainerController,
        "deployer": DeployerController,
        "monitor": lambda: MonitorController(interval, gauges=gauges, requests=requests),
    }
    unknown = [n for n in names if n not in make]
    if unknown:
        raise BadInput(f"unknown controller(s) {unknown}; choose from {', '.join(CONTROLLERS)}")
    return [make[n]() for n in names]


def assemble(
    project: Project,
    names: Sequence[str] = CONTROLLERS,
    *,
    gateway: bool = False,
    lease_ttl: timedelta = timedelta(seconds=30),
    interval: timedelta | None = None,
    grpc_host: str = "127.0.0.1",
    grpc_port: int | None = None,
    gateway_id: str | None = None,
) -> Process:
    """Controllers `names` under one manager, and the gateway too when `gateway` (serving
    gRPC as well on `grpc_port`, default the spec's `serving.grpc_port`). `gateway_id` names the gateway
    in the store and its prediction-log files (default: the host name). `interval`, when
    given, is every controller's longest wait between passes instead of its own default."""
    from tradeloop.serving.mlflow_source import project_app

    world = World.open(project)
    registry = CollectorRegistry(auto_describe=True)
    name = project.spec.name
    app = (
        project_app(
            project,
            world.registry,
            registry=registry,
            grpc_host=grpc_host,
            grpc_port=grpc_port,
            gateway_id=gateway_id,
        )
        if gateway
        else None
    )
    requests = RequestWindow(lambda: request_counts(registry, name)) if gateway else None
    gauges = MonitorGauges(registry, model=name)
    controllers = _controllers(names, project, gauges, requests)
    if interval is not None:
        if interval <= timedelta(0):
            raise BadInput(f"the controllers' interval must be positive, not {interval}")
        for c in controllers:
            c.interval = interval
    manager = Manager(
        project.store,
        project.clock,
        controllers,
        lease_ttl=lease_ttl,
        metrics=ControllerMetrics(registry),
        extras={"world": world},
        watch=world.desired_head,
    )
    return Process(project, world, registry, manager, app)
