"""The demo's loop: hour by simulated hour, bars in, controllers reconcile, signals out."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from tradeloop.clock import SimulatedClock
from tradeloop.control.deployer import DeployerController
from tradeloop.control.events import list_events
from tradeloop.control.manager import Manager
from tradeloop.control.monitor import MonitorController
from tradeloop.control.trainer import TrainerController
from tradeloop.control.world import World
from tradeloop.data.source import checked_bars
from tradeloop.demo.fault import inject_inverted
from tradeloop.demo.gateway import DemoGateway
from tradeloop.demo.market import HISTORY_FILE, BrokerMarket, broker_spec, write_history
from tradeloop.demo.story import (
    DemoResult,
    check_story,
    final_state,
    phase_label,
    promoted_after_drift,
)
from tradeloop.demo.trader import PaperTrader
from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import CHAMPION
from tradeloop.spec import SPEC_FILENAME, Spec
from tradeloop.store import Store
from tradeloop.templates import demo_spec, git_commit, init_project

WARMUP_BARS = 400  # history before the clock starts: enough to train v1
FEATURE_WARMUP = 60  # bars of history posted to warm the gateway's online features
TAIL_BARS = 50  # bars the spec simulates past the loop's safety stop (labels need a future)

OnEvent = Callable[[dict[str, Any]], None]


class _Timeline:
    """The controllers' events as the demo reports them, each once, in order."""

    def __init__(self, store: Store, spec: Spec, on_event: OnEvent | None) -> None:
        self.store = store
        self.spec = spec
        self.on_event = on_event
        self.events: list[dict[str, Any]] = []
        self._seen: set[int] = set()

    def note(self, ev: dict[str, Any]) -> None:
        self.events.append(ev)
        if self.on_event:
            self.on_event(ev)

    def pump(self) -> None:
        for e in list_events(self.store, limit=50):
            if e.id in self._seen:
                continue
            self._seen.add(e.id)
            ev = {
                "t": e.ts.isoformat(),
                "controller": e.controller,
                "action": e.action,
                "version": e.version,
                "reason": e.reason,
            }
            if "phase" in e.payload:  # where a rollout now stands
                ev["phase"] = phase_label(e.payload["phase"], e.payload.get("step"), self.spec)
            self.note(ev)

    def rolled_back(self, version: str) -> bool:
        return any(e["action"] == "rollback" and e["version"] == version for e in self.events)


def _new_project(workdir: Path | None) -> tuple[Path, Path]:
    """A git repository holding the demo's spec, committed: its folder and the spec's path."""
    root = Path(workdir or tempfile.mkdtemp(prefix="tradeloop-demo-")) / "demo"
    spec_path = init_project(root, "demo")
    spec_path.write_text(demo_spec())
    git_commit(root, "demo: pipeline spec with a regime change", SPEC_FILENAME)
    return root, spec_path


def _through_broker(
    root: Path, spec_path: Path, broker: str, market: pl.DataFrame, clock_start: datetime
) -> None:
    """Turn the project into one whose live market arrives through `broker` (demo/market.py)."""
    write_history(market, clock_start, root / HISTORY_FILE)
    spec_path.write_text(broker_spec(spec_path.read_text(), broker))
    git_commit(
        root,
        f"demo: history in a file, the live market through {broker}",
        SPEC_FILENAME,
        HISTORY_FILE,
    )


def run_demo(
    workdir: Path | None = None,
    on_event: OnEvent | None = None,
    *,
    broker: str | None = None,
    hours: int | None = None,
) -> DemoResult:
    """The closed loop; `broker` ("nats", "redis") sends the market through ingest instead of
    HTTP pushes, and `hours` stops after that many simulated hours (the story is then partial)."""
    t_start = time.perf_counter()
    root, spec_path = _new_project(workdir)
    loaded = Project.load(spec_path)
    sim = loaded.spec.data.simulator
    start, last_bar = sim.start, sim.bars - TAIL_BARS
    clock_start = start + timedelta(hours=WARMUP_BARS)
    all_bars, _ = checked_bars(loaded.spec.data, root)  # the whole simulated market
    if broker is not None:
        _through_broker(root, spec_path, broker, all_bars, clock_start)
        loaded = Project.load(spec_path)
    if hours is not None:
        last_bar = min(last_bar, WARMUP_BARS + hours)
    clock = SimulatedClock(clock_start)
    project = Project(loaded.spec, loaded.spec_path, clock)
    world = World.open(project)
    by_time = all_bars.partition_by("timestamp", as_dict=True, maintain_order=True)
    manager = Manager(
        project.store,
        clock,
        [
            TrainerController(timedelta(hours=2)),
            DeployerController(timedelta(hours=2)),
            MonitorController(loaded.spec.monitoring.interval),
        ],
        lease_ttl=timedelta(hours=2),
        extras={"world": world},
    )
    timeline = _Timeline(project.store, loaded.spec, on_event)
    injected: str | None = None
    ingest: dict[str, Any] | None = None

    with DemoGateway(project, world) as gw, ExitStack() as stack:
        trader = PaperTrader(gw.url, sim.symbols)
        stack.callback(trader.close)
        market = None
        if broker is not None:
            history = all_bars.filter(pl.col("timestamp") < clock_start)
            market = stack.enter_context(BrokerMarket(project, gw.url, history))
        feed = market.bars if market is not None else trader.bars
        for k in range(WARMUP_BARS - FEATURE_WARMUP, WARMUP_BARS):  # history: warm features
            trader.bars(_rows(by_time, start + timedelta(hours=k)))
        for hour in range(WARMUP_BARS, last_bar):
            now = start + timedelta(hours=hour)
            clock.set(now)
            feed(_rows(by_time, now))
            if manager.next_due() <= now:
                gw.sync()  # the controllers read what the gateway logged
                manager.run_once()
                gw.gateway.manager.refresh()  # pick up a new deployment at once
                timeline.pump()
            trader.signals()
            if injected is None and promoted_after_drift(timeline.events):
                injected = _inject(world, timeline, now)
            if injected is not None and timeline.rolled_back(injected):
                break
        if market is not None:
            ingest = market.stats()
    state = final_state(world, trader)
    if ingest is not None:
        state["ingest"] = ingest
    problems = check_story(timeline.events, injected)
    seconds = time.perf_counter() - t_start
    return DemoResult(timeline.events, state, str(root), seconds, not problems, problems)


def _inject(world: World, timeline: _Timeline, now: datetime) -> str:
    champ = world.registry.by_alias(world.name, CHAMPION)
    version = inject_inverted(
        world,
        champ.version if champ else "2",
        "demo fault injection: v2 with its signal inverted",
    )
    timeline.note(
        {
            "t": now.isoformat(),
            "controller": "demo",
            "action": "inject_bad",
            "version": version,
            "reason": "deliberately bad model (inverted)",
        }
    )
    return version


def _rows(by_time: dict[Any, Any], ts: Any) -> list[dict[str, Any]]:
    frame = by_time[(ts,)]
    return [
        {
            "symbol": r["symbol"],
            "timestamp": r["timestamp"].isoformat(),
            "open": r["open"],
            "high": r["high"],
            "low": r["low"],
            "close": r["close"],
            "volume": r["volume"],
        }
        for r in frame.iter_rows(named=True)
    ]
