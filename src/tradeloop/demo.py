"""`tradeloop demo`: the whole loop, on a simulated clock, through the real gateway on loopback.

A fresh project (a real git repository) on the simulator with a regime change. The clock starts
with enough history to train; then, hour by simulated hour, the market reveals one bar per
symbol, a paper-trading client POSTs the bars to the gateway and reads each account's signal over
HTTP, and the controllers (trainer, deployer, monitor) reconcile under the manager. Expected
story: v1 trained, approved by policy, promoted; the regime changes, drift is detected, v2 is
trained for that reason, shadowed, canaried, analysed and promoted; then a deliberately bad v3
(v2 with its signal inverted, a fault the demo injects into the registry) is rolled back by
analysis. Everything stays browsable afterwards: MLflow, `tradeloop status`, `audit list`.
"""

from __future__ import annotations

import hashlib
import json
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tradeloop.clock import SimulatedClock
from tradeloop.control.deployer import DeployerController
from tradeloop.control.events import list_events
from tradeloop.control.manager import Manager
from tradeloop.control.monitor import MonitorController
from tradeloop.control.trainer import TrainerController
from tradeloop.control.world import World
from tradeloop.errors import RuntimeFailure
from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import CHALLENGER, CHAMPION, ONNX_FILE, ModelVersion
from tradeloop.serving.predlog_compact import compact

WARMUP_BARS = 400  # history before the clock starts: enough to train v1
REGIME_AT = 600  # the market turns here (bar index)
LAST_BAR = 1000  # a safety stop; the story ends well before

DEMO_SPEC = f"""\
# The demo's pipeline: 12 symbols of hourly bars; momentum until bar {REGIME_AT}, then the
# market turns (mean reversion, 3x volatility, tighter correlation).
name: demo
data:
  source: simulator
  frequency: 1h
  simulator:
    symbols: [S01, S02, S03, S04, S05, S06, S07, S08, S09, S10, S11, S12]
    start: 2024-01-01T00:00:00Z
    bars: {LAST_BAR + 50}
    seed: 11
    regimes:
      - {{at: 0, drift: 0.0, volatility: 0.01, correlation: 0.3, signal: 0.3}}
      - {{at: {REGIME_AT}, drift: 0.0, volatility: 0.03, correlation: 0.6, signal: -0.4}}
labels: {{horizon: 1, kind: sign}}
model:
  type: lightgbm
  n_estimators: 60
  num_leaves: 7
  min_child_samples: 40
training:
  split: {{scheme: sliding, folds: 1, train_bars: 96, min_train_bars: 96, test_bars: 40}}
backtest: {{cost_bps: 0.5, slippage_bps: 0.5, long_threshold: 0.5, short_threshold: 0.5}}
gates:
  min_sharpe: 0.0
  max_drawdown: 0.5
  champion: {{metric: sharpe, margin: 0.0, min_bars: 30}}
deployment:
  strategy: canary
  approval: auto
  shadow: {{duration: 12h, min_samples: 100}}
  steps:
    - {{weight: 25, pause: 12h}}
    - {{weight: 50, pause: 12h}}
  analysis: {{metric: pnl, alpha: 0.05, min_samples: 100, planned_samples: 800,
             failure_limit: 1, max_extensions: 4, max_latency_p99_ms: 250}}
  git: {{branch: main, mode: direct}}
  serving: {{sticky_key: symbol}}
monitoring:
  drift: {{method: psi, threshold: 0.5, share: 0.5, window: 480}}
  alerts:
    - {{name: data_drift, metric: drift_share, op: ">=", value: 0.5, for: 72h}}
retraining:
  max_age: 90d
  on: [data_drift]
"""


def phase_label(phase: str, step: int | None, spec: Any) -> str:
    """`step`, 1 -> "canary 50%": the rollout phase as a reader of the timeline wants it."""
    steps = spec.deployment.steps
    if phase == "step" and step is not None and 0 <= step < len(steps):
        return f"canary {steps[step].weight}%"
    return phase


@dataclass
class DemoResult:
    events: list[dict[str, Any]]
    state: dict[str, Any]
    project: str
    seconds: float
    ok: bool
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "state": self.state,
            "project": self.project,
            "seconds": round(self.seconds, 1),
            "ok": self.ok,
            "problems": self.problems,
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Gateway:
    """The real gateway (uvicorn on a loopback port) in a background thread."""

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

    def __enter__(self) -> _Gateway:
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
        """Make the prediction log current before the controllers read it."""
        gw = self.gateway
        drain = getattr(gw.shadow, "drain", None)
        if drain is not None:
            drain(timeout=5.0)
        gw.predlog.flush(timeout=10.0)
        compact(self.predictions_dir, min_parts=4)


def _inverted_v3(world: World, base: str, reason: str) -> str:
    """Fault injection: register `base` with its signal inverted (p -> 1 - p), as a version that
    passed its gates, so the rollout's live analysis is what has to catch it."""
    import mlflow
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    name = world.name
    reg = world.registry
    src = reg.get(name, base)
    model = onnx.load_from_string((reg.model_dir(src) / ONNX_FILE).read_bytes())
    g = model.graph
    out = g.output[0].name
    g.node[-1].output[0] = "tradeloop_raw"  # the last node makes `prediction`
    g.initializer.append(numpy_helper.from_array(np.array(1.0, dtype=np.float32), "tradeloop_one"))
    g.node.append(
        helper.make_node("Sub", ["tradeloop_one", "tradeloop_raw"], [out], name="demo_invert")
    )
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, [None]))
    onnx.checker.check_model(model)
    exp = reg.experiment_id(name)
    with mlflow.start_run(
        experiment_id=exp, run_name="demo-fault-injection", tags={"tradeloop.reason": reason}
    ) as run:
        from mlflow.models.signature import ModelSignature
        from mlflow.types.schema import ColSpec, Schema

        feats = src.features
        sig = ModelSignature(
            inputs=Schema([ColSpec("float", f) for f in feats]),
            outputs=Schema([ColSpec("float", "prediction")]),
        )
        info = mlflow.onnx.log_model(
            model, name="model", signature=sig, save_as_external_data=False, pip_requirements=[]
        )
        for artifact in ("card_info.json", "reference_profile.json"):
            local = reg.run_artifact(src.run_id or "", artifact)
            mlflow.log_artifact(str(local))
        path = reg.model_dir(ModelVersion(name, "", None, info.model_uri, {}))
        sha = hashlib.sha256((path / ONNX_FILE).read_bytes()).hexdigest()
        tags = {
            **src.tags,
            "onnx_sha256": sha,
            "reason": reason,
            "training_run": run.info.run_id,
            "trained_at": world.clock.now().isoformat(),
        }
        tags.pop("tradeloop.complete", None)
        mv = reg.register(name, info.model_uri, run.info.run_id, tags, alias=CHALLENGER)
    world.store.audit.append(
        "demo",
        "demo.fault_injection",
        f"model:{name}/{mv.version}",
        {"base": base, "reason": reason},
    )
    return mv.version


class PaperTrader:
    """Twelve accounts, one per symbol: each hour the market's bars go in, signals come out."""

    def __init__(self, url: str, symbols: list[str]) -> None:
        self.client = httpx.Client(base_url=url, timeout=30.0)
        self.symbols = symbols
        self.requests = 0
        self.errors = 0

    def close(self) -> None:
        self.client.close()

    def bars(self, rows: list[dict[str, Any]]) -> None:
        r = self.client.post("/v1/bars", json={"bars": rows})
        self.requests += 1
        if r.status_code != 200:
            self.errors += 1
            raise RuntimeFailure(f"/v1/bars answered {r.status_code}: {r.text[:300]}")

    def signals(self) -> None:
        for i, sym in enumerate(self.symbols):
            r = self.client.get(f"/v1/signals/{sym}", headers={"x-account": f"acct-{i:02d}"})
            self.requests += 1
            if r.status_code == 409:  # features still warming up
                continue
            if r.status_code >= 400:
                self.errors += 1


def run_demo(
    workdir: Path | None = None, on_event: Callable[[dict[str, Any]], None] | None = None
) -> DemoResult:
    from tradeloop.cli.project_cmds import _git, init_project
    from tradeloop.spec import SPEC_FILENAME

    t_start = time.perf_counter()
    root = Path(workdir or tempfile.mkdtemp(prefix="tradeloop-demo-")) / "demo"
    spec_path = init_project(root, "demo")
    spec_path.write_text(DEMO_SPEC)
    _git(root, "add", SPEC_FILENAME)
    _git(
        root,
        "-c",
        "user.name=tradeloop",
        "-c",
        "user.email=tradeloop@localhost",
        "commit",
        "-q",
        "-m",
        "demo: pipeline spec with a regime change",
    )

    loaded = Project.load(spec_path)
    start = loaded.spec.data.simulator.start
    clock = SimulatedClock(start + timedelta(hours=WARMUP_BARS))
    project = Project(loaded.spec, loaded.spec_path, clock)
    world = World.open(project)
    all_bars = world.bars(start + timedelta(hours=LAST_BAR + 49))
    by_time = all_bars.partition_by("timestamp", as_dict=True, maintain_order=True)
    manager = Manager(
        project.store,
        clock,
        [
            TrainerController(timedelta(hours=2)),
            DeployerController(timedelta(hours=2)),
            MonitorController(timedelta(hours=3)),
        ],
        lease_ttl=timedelta(hours=2),
        extras={"world": world},
    )
    seen: list[dict[str, Any]] = []
    seen_ids: set[int] = set()
    injected: str | None = None

    def note(ev: dict[str, Any]) -> None:
        seen.append(ev)
        if on_event:
            on_event(ev)

    def pump() -> None:
        for e in list_events(project.store, limit=50):
            if e.id not in seen_ids:
                seen_ids.add(e.id)
                ev = {
                    "t": e.ts.isoformat(),
                    "controller": e.controller,
                    "action": e.action,
                    "version": e.version,
                    "reason": e.reason,
                }
                if "phase" in e.payload:  # where a rollout now stands
                    ev["phase"] = phase_label(
                        e.payload["phase"], e.payload.get("step"), loaded.spec
                    )
                note(ev)

    with _Gateway(project, world) as gw:
        trader = PaperTrader(gw.url, loaded.spec.data.simulator.symbols)
        try:
            # warm the online features with the last 60 bars of history
            for k in range(WARMUP_BARS - 60, WARMUP_BARS):
                trader.bars(_rows(by_time, start + timedelta(hours=k)))
            for hour in range(WARMUP_BARS, LAST_BAR):
                now = start + timedelta(hours=hour)
                clock.set(now)
                trader.bars(_rows(by_time, now))
                if manager.next_due() <= now:
                    gw.sync()  # the controllers read what the gateway logged
                    manager.run_once()
                    gw.gateway.manager.refresh()  # pick up a new deployment at once
                    pump()
                trader.signals()
                if injected is None and _promoted_after_drift(seen):
                    champ = world.registry.by_alias("demo", CHAMPION)
                    injected = _inverted_v3(
                        world,
                        champ.version if champ else "2",
                        "demo fault injection: v2 with its signal inverted",
                    )
                    note(
                        {
                            "t": now.isoformat(),
                            "controller": "demo",
                            "action": "inject_bad",
                            "version": injected,
                            "reason": "deliberately bad model (inverted)",
                        }
                    )
                if injected is not None and any(
                    e["action"] == "rollback" and e["version"] == injected for e in seen
                ):
                    break
        finally:
            trader.close()
    state = _final_state(world, trader)
    problems = _check_story(seen, injected)
    return DemoResult(seen, state, str(root), time.perf_counter() - t_start, not problems, problems)


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


def _promoted_after_drift(events: list[dict[str, Any]]) -> bool:
    drift = any(e["action"] == "alert_firing" for e in events)
    promotions = [e for e in events if e["action"] == "promote"]
    return drift and len(promotions) >= 2


def _final_state(world: World, trader: PaperTrader) -> dict[str, Any]:
    from tradeloop.store import deployments as dep

    reg, name = world.registry, world.name
    versions = reg.versions(name)
    champ = reg.by_alias(name, CHAMPION)
    desired = world.desired()
    return {
        "champion": champ.version if champ else None,
        "serving": [d.to_dict() for d in dep.current(world.store, name)],
        "git_pin": desired.pin.to_dict() if desired.pin else None,
        "versions": [
            {
                "version": v.version,
                "aliases": v.aliases,
                "rejected": v.rejected,
                "reason": v.tags.get("reason"),
            }
            for v in versions
        ],
        "audit": world.store.audit.verify().to_dict(),
        "requests": trader.requests,
        "request_errors": trader.errors,
        "clock": world.clock.now().isoformat(),
    }


def _check_story(events: list[dict[str, Any]], injected: str | None) -> list[str]:
    def first(action: str, version: str | None = None) -> int | None:
        for i, e in enumerate(events):
            if e["action"] == action and (version is None or e["version"] == version):
                return i
        return None

    problems = []
    order = [
        ("promote v1", first("promote", "1")),
        ("drift alert", first("alert_firing")),
        ("train v2 for drift", first("registered", "2")),
        ("promote v2", first("promote", "2")),
        ("rollback of the bad model", first("rollback", injected) if injected else None),
    ]
    last = -1
    for what, idx in order:
        if idx is None:
            problems.append(f"missing: {what}")
        elif idx < last:
            problems.append(f"out of order: {what}")
        else:
            last = idx
    return problems


def summary_lines(result: DemoResult) -> list[str]:
    s = result.state
    return [
        f"champion: v{s['champion']}; serving: "
        + ", ".join(
            f"{d['variant']} v{d['version']} {d['mode']} {d['weight']}%" for d in s["serving"]
        ),
        f"git pins v{(s['git_pin'] or {}).get('version')}; rejected "
        f"{(s['git_pin'] or {}).get('rejected')}",
        f"{s['requests']} requests to the gateway, {s['request_errors']} errors; "
        f"audit chain {'intact' if s['audit']['ok'] else 'BROKEN'} ({s['audit']['entries']} "
        "entries)",
        f"project kept at {result.project} (tradeloop status --spec {result.project})",
    ]


def dumps(result: DemoResult) -> str:
    return json.dumps(result.to_dict(), indent=2, default=str)
