"""How a process is put together: its controllers, their manager and one metrics registry.

`tradeloop up` and `controller run` build the same parts here, and tests build them the same
way in-process (with a SimulatedClock), so what a test scrapes is what production exposes.
Everything a process measures goes into one `CollectorRegistry`: the gateway's series, the
controllers' and the monitor's gauges, all on one `/metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from tradeloop.control.deployer import DeployerController
from tradeloop.control.jobs import JobRunner
from tradeloop.control.manager import Manager
from tradeloop.control.metrics import ControllerMetrics
from tradeloop.control.monitor import MonitorController
from tradeloop.control.reconciler import Reconciler
from tradeloop.control.scoped import ScopedController, broken_world, controller_name
from tradeloop.control.trainer import TrainerController
from tradeloop.control.world import World
from tradeloop.errors import BadInput
from tradeloop.monitoring.gauges import MonitorGauges
from tradeloop.monitoring.slo import RequestsSince, RequestWindow, request_counts
from tradeloop.project import Project
from tradeloop.spec.catalog import Broken

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["CONTROLLERS", "Process", "assemble"]

CONTROLLERS = ("trainer", "deployer", "monitor")


@dataclass
class Process:
    """The parts of one tradeloop process. `world` is the first pipeline's; `worlds` holds
    every pipeline's that has one (a pipeline that does not validate gets its world, if ever,
    when its controllers first run)."""

    project: Project
    world: World
    registry: CollectorRegistry
    manager: Manager
    app: Starlette | None = None
    worlds: dict[str, World] = field(default_factory=dict)

    def close(self) -> None:
        """Stop the controllers' background work (the monitor's notifier)."""
        for c in self.manager.controllers:
            close = getattr(c, "close", None)
            if close is not None:
                close()


def _controller(
    kind: str,
    project: Project,
    gauges: MonitorGauges,
    counts: Callable[[], dict[str, tuple[float, float]]] | None,
    runner: JobRunner | None,
) -> Reconciler:
    """One controller; `counts` are the in-process gateway's request counts, if it runs here
    (the monitor's SLO window and the deployer's canary error rate each keep their own mark)."""
    interval = project.spec.monitoring.interval
    window = RequestWindow(counts) if counts is not None else None
    since = RequestsSince(counts) if counts is not None else None
    make: dict[str, Callable[[], Reconciler]] = {
        "trainer": lambda: TrainerController(runner=runner),
        "deployer": lambda: DeployerController(requests=since),
        "monitor": lambda: MonitorController(interval, gauges=gauges, requests=window),
    }
    return make[kind]()


def _check(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in CONTROLLERS]
    if unknown:
        raise BadInput(f"unknown controller(s) {unknown}; choose from {', '.join(CONTROLLERS)}")


def assemble(
    project: Project,
    names: Sequence[str] = CONTROLLERS,
    *,
    gateway: bool = False,
    lease_ttl: timedelta = timedelta(seconds=30),
    interval: timedelta | None = None,
    grpc_host: str = "127.0.0.1",
    grpc_port: int | None = None,
    pipelines: Sequence[Project] = (),
    broken: Sequence[Broken] = (),
    jobs: bool = False,
    wait_jobs: bool = False,
    gateway_id: str | None = None,
) -> Process:
    """Controllers `names` for `project` and every other pipeline in `pipelines` (all sharing
    `project`'s store), under one manager; parked controllers for each `broken` pipeline; and
    the gateway too when `gateway` (serving gRPC as well on `grpc_port`, default the spec's
    `serving.grpc_port`; one pipeline only). `gateway_id` names the gateway in the store and
    its prediction-log files (default: the host name). `interval`, when given, is every
    controller's longest wait between passes instead of its own default.

    With `jobs` the trainer trains in job processes (`control/jobs.py`, one runner per
    pipeline), as `up` and `controller run` ask; `wait_jobs` blocks each reconcile until its
    job ends (`--once`). Without, it trains in this process (tests on a SimulatedClock)."""
    _check(names)
    projects = [project, *(p for p in pipelines if p is not project)]
    registry = CollectorRegistry(auto_describe=True)
    worlds = {p.spec.name: World.open(p) for p in projects}
    app = None
    if gateway:
        from tradeloop.serving.pipelines import pipelines_app

        app = pipelines_app(
            [(p, worlds[p.spec.name].registry) for p in projects],
            registry=registry,
            grpc_host=grpc_host,
            grpc_port=grpc_port,
            gateway_id=gateway_id,
        )
    gauges = MonitorGauges(registry, model=project.spec.name)
    controllers: list[Reconciler] = []
    for p in projects:
        name = p.spec.name
        world = worlds[name]
        counts = (lambda name=name: request_counts(registry, name)) if gateway else None
        runner = JobRunner(p, wait=wait_jobs) if jobs else None
        for kind in names:
            inner = _controller(kind, p, gauges.for_model(name), counts, runner)
            cname = controller_name(kind, p)
            controllers.append(ScopedController(inner, cname, lambda w=world: w))  # type: ignore[misc]
    for b in broken:
        make = broken_world(project, b)
        for kind in names:
            inner = _controller(kind, project, gauges.for_model(b.name), None, None)
            controllers.append(ScopedController(inner, controller_name(kind, b.name), make))
    first = worlds[project.spec.name]

    def heads() -> object:
        """What a parked controller waits to see change: every tracked branch's head."""
        return tuple(sorted({str(w.desired_head()) for w in worlds.values()}))

    if interval is not None:
        if interval <= timedelta(0):
            raise BadInput(f"the controllers' interval must be positive, not {interval}")
        for c in controllers:
            c.interval = interval
            if isinstance(c, ScopedController):
                c.inner.interval = interval
    manager = Manager(
        project.store,
        project.clock,
        controllers,
        lease_ttl=lease_ttl,
        metrics=ControllerMetrics(registry),
        extras={"world": first},
        watch=heads if len(worlds) > 1 else first.desired_head,
    )
    return Process(project, first, registry, manager, app, worlds)
