"""One training run, from validated bars to a gated, registered, documented model version.

data → snapshot → features + labels → purged walk-forward folds (→ Optuna) → out-of-sample
predictions → cost-aware backtest → gates (absolute and vs the champion, on the same window) →
final fit → ONNX (parity-checked) → MLflow run with lineage → registered version, all or nothing.

This module is the step sequence only; each step's work lives beside it (`out_of_sample`,
`gating`, `onnx_parity`, `artifacts`, `tuning_step`) or in `registry/` (the run, lineage tags,
card data, registration). `crash_point`s mark where a killed job must leave nothing registered.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tradeloop.data.snapshot import write_snapshot
from tradeloop.data.source import checked_bars
from tradeloop.errors import RuntimeFailure
from tradeloop.evaluation.explain import sha256
from tradeloop.faults import crash_point
from tradeloop.observability import tracing
from tradeloop.project import Project
from tradeloop.registry.lineage import card_info, code_revision, lineage_tags, run_tags
from tradeloop.registry.mlflow_registry import (
    CHALLENGER,
    CHAMPION,
    ONNX_FILE,
    ModelVersion,
    Registry,
    sha256_file,
)
from tradeloop.registry.model_card import CARD_METRICS
from tradeloop.registry.recovery import HOLDER_TAG
from tradeloop.registry.tracking import serving_requirements
from tradeloop.store import Store, leases
from tradeloop.training import report_step
from tradeloop.training.adapters import make_adapter
from tradeloop.training.artifacts import write_run_artifacts
from tradeloop.training.bookkeeping import TRIGGER_TAG, Outcome, Recovery, record, recover
from tradeloop.training.dataset import bars_as_of, final_rows, training_frame, xy
from tradeloop.training.gating import gate_report
from tradeloop.training.onnx_parity import export_checked
from tradeloop.training.out_of_sample import backtest, finite_metrics, fold_results
from tradeloop.training.selection_step import selection_metrics, selection_report
from tradeloop.training.splits import walk_forward
from tradeloop.training.tuning_step import tune_in_training

Step = Callable[[str], None]
TRAINING_LEASE_TTL = timedelta(seconds=30)  # the controllers' lease TTL; heartbeat every 10 s


@dataclass
class TrainResult:
    run_id: str
    version: str | None
    gates: dict[str, Any]
    metrics: dict[str, float]
    dataset_hash: str
    reason: str
    folds: list[dict[str, Any]] = field(default_factory=list)
    champion: str | None = None
    seconds: float = 0.0
    selection: dict[str, Any] = field(default_factory=dict)
    segments: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "version": self.version,
            "gates": self.gates,
            "metrics": self.metrics,
            "dataset_hash": self.dataset_hash,
            "reason": self.reason,
            "champion": self.champion,
            "folds": self.folds,
            "deflated_sharpe": self.selection.get("deflated_sharpe"),
            "pbo": self.selection.get("pbo"),
            "selection": self.selection,
            "segments": self.segments,
            "seconds": round(self.seconds, 2),
        }


def train(
    project: Project,
    *,
    reason: str = "manual",
    actor: str = "cli",
    as_of: datetime | None = None,
    on_step: Step | None = None,
    extra_tags: dict[str, str] | None = None,
    registry: Registry | None = None,
    on_trial: Callable[[], None] | None = None,
) -> TrainResult:
    """Run the whole pipeline once. Registers a version only when every gate passes.

    `registry` defaults to the project's own; pass one to share its MLflow client.
    `on_step(name)` runs as each step starts, `on_trial()` after each tuning trial
    (progress display, `training.run_metrics`).
    """
    spec, store = project.spec, project.store
    phases = tracing.Phases(f"train {spec.name}", **{"tradeloop.pipeline": spec.name})

    def step(name: str) -> None:
        phases.step(name)
        if on_step is not None:
            on_step(name)

    error: BaseException | None = None
    try:
        with training_lease(project) as holder:
            reg = registry or Registry.for_project(project)
            recover(store, reg, spec.name, holder, actor)
            tags = {**(extra_tags or {}), HOLDER_TAG: holder}
            return _train(project, reg, reason, actor, as_of, step, tags, on_trial)
    except BaseException as exc:
        error = exc
        raise
    finally:
        phases.close(error)


@contextlib.contextmanager
def training_lease(project: Project) -> Iterator[str]:
    """The pipeline's training lease, heartbeated while held; yields the holder id.

    Same TTL and dead-holder rule as the controllers' leases: a killed trainer on this host is
    taken over at once, one elsewhere within `TRAINING_LEASE_TTL`."""
    store, name = project.store, project.spec.name
    holder = leases.process_holder(uuid.uuid4().hex[:8])
    lease = f"train:{name}"
    if not leases.acquire(store, lease, holder, TRAINING_LEASE_TTL):
        raise RuntimeFailure(
            f"another training of {name!r} is running ({leases.holder_of(store, lease)})"
        )
    try:
        with leases.Heartbeat(store, lease, holder, TRAINING_LEASE_TTL):
            yield holder
    finally:
        leases.release(store, lease, holder)


def recover_training(project: Project, actor: str, registry: Registry | None = None) -> Recovery:
    """Under the training lease: clean up after dead trainings, finish their bookkeeping."""
    with training_lease(project) as holder:
        reg = registry or Registry.for_project(project)
        return recover(project.store, reg, project.spec.name, holder, actor)


def _train(
    project: Project,
    registry: Registry,
    reason: str,
    actor: str,
    as_of: datetime | None,
    step: Step,
    extra_tags: dict[str, str],
    on_trial: Callable[[], None] | None = None,
) -> TrainResult:
    t0 = time.perf_counter()
    spec, store = project.spec, project.store

    step("data")
    bars, report = checked_bars(spec.data, project.root, project.live_bars_dir)
    bars = bars_as_of(bars, as_of)
    snap = write_snapshot(
        bars, project.snapshots_dir, {"validation": report.to_dict(), "source": spec.data.source}
    )
    step("features")
    frame = training_frame(bars, spec)
    closes = bars.select("timestamp", "symbol", "close")
    folds = walk_forward(frame["timestamp"], spec.training.split, spec.labels.horizon)
    base = make_adapter(spec.model, seed=spec.training.seed)
    spec_hash, revision = spec.spec_hash(), code_revision(project.root)
    tags = run_tags(
        spec, snap, reason=reason, spec_hash=spec_hash, code_revision=revision, extra=extra_tags
    )

    with registry.start_run(spec.name, f"train-{reason}"[:60], tags) as run:
        run_id = run.run_id
        crash_point("run_started")
        run.log_dataset(
            snap.path, name=f"bars-{snap.hash[:12]}", digest=snap.hash[:36], context="training"
        )
        tuning, tuned = None, None
        if spec.training.tuning.trials > 0:
            step("tuning")
            tuned = tune_in_training(
                spec, project, registry, base, frame, folds, snap.hash, run_id, closes, on_trial
            )
            tuning = tuned.doc
            base = base.with_params(**tuning["best_params"])
        run.log_params(
            {
                **{f"model.{k}": v for k, v in base.describe().get("params", {}).items()},
                "model.type": spec.model.type,
                "model.task": spec.model.task,
                "label.horizon": spec.labels.horizon,
                "split.scheme": spec.training.split.scheme,
                "split.folds": len(folds),
                "features": ",".join(spec.feature_names),
            }
        )
        fold_info, oos = fold_results(spec, base, frame, folds, closes, step)
        for f in fold_info:
            run.log_metrics(
                {f"fold{f['fold']}_{k}": v for k, v in f["metrics"].items() if k in CARD_METRICS}
            )
        step("backtest")
        result = backtest(spec, oos, closes)
        metrics = finite_metrics(result.metrics)
        run.log_metrics({f"oos_{k}": v for k, v in metrics.items()})
        step("selection")
        selection = selection_report(spec.name, registry, run_id, result, tuned)
        segments = report_step.segments_of(spec, result, bars)
        extra = selection_metrics(selection)
        extra["max_segment_drawdown"] = segments["max_segment_drawdown"]
        run.log_metrics(extra)
        champ = registry.by_alias(spec.name, CHAMPION)
        gates = gate_report(spec, registry, {**metrics, **extra}, champ, frame, oos, closes)
        gates_doc = gates.to_dict()
        run.log_metrics({"gates_passed": float(gates.passed)})

        step("final model")
        final = final_rows(frame, spec)
        X, y, _ = xy(final, spec.feature_names)
        model = base.with_params().fit(X, y)
        onnx_bytes, diff = export_checked(model, spec.feature_names, X)
        run.log_metrics({"onnx_parity_max_abs_diff": diff})
        explainer, importance = report_step.explanation_of(model, spec.feature_names, X)
        logged = run.log_onnx_model(onnx_bytes, spec.feature_names, serving_requirements())
        crash_point("model_logged")
        onnx_sha = sha256_file(registry.model_dir_of(logged.model_uri) / ONNX_FILE)

        step("artifacts")
        lineage = lineage_tags(
            spec,
            snap,
            onnx_sha256=onnx_sha,
            spec_hash=spec_hash,
            code_revision=revision,
            gates_passed=gates.passed,
            run_id=run_id,
            reason=reason,
            trained_at=project.clock.now(),
            metrics=metrics,
        )
        card = card_info(
            spec,
            snap,
            validation_warnings=len(report.warnings),
            model=base.describe(),
            training_rows=final.height,
            tuning=tuning,
            folds=fold_info,
            metrics=metrics,
            gates=gates_doc,
            lineage=lineage,
            extra={
                "selection": selection,
                "segments": segments,
                "importance": importance,
                "environment": report_step.environment(project.root),
                "symbol_ranges": report_step.data_ranges(bars),
                "purge": report_step.purge_applied(fold_info, spec),
            },
        )
        with tempfile.TemporaryDirectory() as tmp:
            write_run_artifacts(
                Path(tmp),
                spec,
                input_schema=model.input_schema(spec.feature_names).to_json(),
                validation=report.to_dict(),
                gates=gates_doc,
                folds=fold_info,
                metrics=metrics,
                card_info=card,
                result=result,
                final=final,
                model=model,
                X=X,
            )
            if explainer is not None:
                (Path(tmp) / report_step.EXPLAINER_FILE).write_bytes(explainer)
            run.log_artifacts(Path(tmp))
        crash_point("artifacts_logged")

        version = None
        if gates.passed:
            step("register")
            explained = {"explainer_sha256": sha256(explainer)} if explainer else {}
            mv = _register(
                registry,
                spec.name,
                logged.model_uri,
                run_id,
                {**lineage, **explained, **_authors(store, spec.name, actor, extra_tags)},
            )
            version = mv.version
            crash_point("version_complete")
        outcome = Outcome(
            spec.name,
            run_id,
            reason,
            snap.hash,
            version=version,
            onnx_sha256=onnx_sha,
            trigger=extra_tags.get(TRIGGER_TAG),
            failed_gates=[g["name"] for g in gates_doc["gates"] if not g["passed"]],
        )
        record(store, outcome, actor)  # audit entries and trigger status: one transaction
        crash_point("outcome_recorded")
    crash_point("run_finished")
    return TrainResult(
        run_id,
        version,
        gates_doc,
        metrics,
        snap.hash,
        reason,
        fold_info,
        champ.version if champ else None,
        time.perf_counter() - t0,
        selection,
        segments,
    )


def _authors(store: Store, name: str, actor: str, extra_tags: dict[str, str]) -> dict[str, str]:
    """Who registered the version and who asked for its training (the four-eyes rule's
    authors, registry.decisions): the requester of a retrain request, else the actor."""
    from tradeloop.store.retrain_requests import requested_by

    asked = requested_by(store, name, extra_tags.get(TRIGGER_TAG, ""))
    return {"approval": "pending", "registered_by": actor, "triggered_by": asked or actor}


def _register(
    registry: Registry, name: str, model_uri: str, run_id: str, tags: dict[str, str]
) -> ModelVersion:
    crash_point("before_register")
    return registry.register(name, model_uri, run_id, tags, alias=CHALLENGER)
