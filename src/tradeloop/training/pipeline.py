"""One training run, from validated bars to a gated, registered, documented model version.

data → snapshot → features + labels → purged walk-forward folds (→ Optuna) → out-of-sample
predictions → cost-aware backtest → gates (absolute and vs the champion, on the same window) →
final fit → ONNX (parity-checked) → MLflow run with lineage → registered version, all or nothing.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tradeloop.data.snapshot import Snapshot, write_snapshot
from tradeloop.data.source import checked_bars
from tradeloop.errors import RuntimeFailure
from tradeloop.evaluation.backtest import BacktestResult, plot_equity, run_backtest
from tradeloop.evaluation.gates import GateReport, GateResult, evaluate_gates
from tradeloop.faults import crash_point
from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import (
    CHALLENGER,
    CHAMPION,
    ONNX_FILE,
    ModelVersion,
    Registry,
    sha256_file,
)
from tradeloop.registry.model_card import CARD_METRICS, render_html, render_markdown
from tradeloop.spec import GatesSpec, Spec, format_duration
from tradeloop.store import leases
from tradeloop.training.adapters import ModelAdapter, make_adapter, onnx_predict
from tradeloop.training.dataset import bars_as_of, training_frame, xy
from tradeloop.training.splits import Fold, walk_forward

Step = Callable[[str], None]
PARITY_ATOL = 1e-5


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
            "seconds": round(self.seconds, 2),
        }


def code_revision(root: Path) -> str:
    """The user's repo at HEAD (`-dirty` if the tree has changes), or `none` outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "none"
    return sha + ("-dirty" if dirty.strip() else "")


def _predictions(frame: pl.DataFrame, rows: np.ndarray, pred: np.ndarray) -> pl.DataFrame:
    return (
        frame[rows]
        .select("timestamp", "symbol")
        .with_columns(pl.Series("prediction", pred.astype(np.float64)))
    )


def _backtest(spec: Spec, preds: pl.DataFrame, closes: pl.DataFrame) -> BacktestResult:
    return run_backtest(
        preds,
        spec.backtest,
        bars=closes,
        task=spec.model.task,
        frequency=spec.data.frequency,
        calendar=spec.data.calendar,
    )


def _clean(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and np.isfinite(v)
    }


class _Trainer:
    def __init__(self, project: Project, registry: Registry, step: Step) -> None:
        self.p = project
        self.spec = project.spec
        self.reg = registry
        self.step = step

    def champion_gate(
        self,
        champ: ModelVersion | None,
        frame: pl.DataFrame,
        oos: pl.DataFrame,
        closes: pl.DataFrame,
    ) -> GateReport:
        """Challenger vs champion on the same window, which neither has trained on: the
        out-of-sample rows after the champion's last training bar."""
        cg = self.spec.gates.champion
        only = GatesSpec(
            min_sharpe=None, max_drawdown=None, min_hit_rate=None, min_ic=None, champion=cg
        )
        if cg is None:
            return GateReport((), ("champion",))
        if champ is None:
            return _champion_only(evaluate_gates({}, only, None))
        name = f"champion_{cg.metric}"
        missing = [f for f in champ.features if f not in frame.columns]
        if missing:
            return GateReport(
                (
                    GateResult(
                        name,
                        None,
                        None,
                        ">=",
                        False,
                        f"champion v{champ.version} needs features {missing} "
                        "that this spec no longer defines",
                    ),
                )
            )
        end = datetime.fromisoformat(champ.tags.get("data_end", "1970-01-01T00:00:00+00:00"))
        window = oos.filter(pl.col("timestamp") > end)
        n_bars = window["timestamp"].n_unique()
        if n_bars < cg.min_bars:
            return GateReport(
                (
                    GateResult(
                        name,
                        None,
                        None,
                        ">=",
                        False,
                        f"only {n_bars} out-of-sample bars after champion "
                        f"v{champ.version}'s data ({end.isoformat()}); need "
                        f"{cg.min_bars} to compare them fairly",
                    ),
                )
            )
        rows = frame.with_row_index("_row").join(
            window.select("timestamp", "symbol"), on=["timestamp", "symbol"]
        )
        onnx_bytes, _ = self.reg.fetch_onnx(self.spec.name, champ.version)
        X = np.ascontiguousarray(rows.select(champ.features).to_numpy(), dtype=np.float32)
        theirs = rows.select("timestamp", "symbol").with_columns(
            pl.Series("prediction", onnx_predict(onnx_bytes, X).astype(np.float64))
        )
        ours = _clean(_backtest(self.spec, window, closes).metrics)
        champ_metrics = _clean(_backtest(self.spec, theirs, closes).metrics)
        return _champion_only(evaluate_gates(ours, only, champ_metrics))

    def folds(
        self, base: ModelAdapter, frame: pl.DataFrame, folds: list[Fold], closes: pl.DataFrame
    ) -> tuple[list[dict[str, Any]], pl.DataFrame]:
        X, y, _ = xy(frame, self.spec.feature_names)
        out, parts = [], []
        for f in folds:
            self.step(f"fold {f.index + 1}/{len(folds)}")
            model = base.with_params().fit(X[f.train], y[f.train])
            preds = _predictions(frame, f.test, model.predict(X[f.test]))
            parts.append(preds)
            res = _backtest(self.spec, preds, closes)
            out.append({**f.describe(), "metrics": _clean(res.metrics)})
        return out, pl.concat(parts)


def train(
    project: Project,
    *,
    reason: str = "manual",
    actor: str = "cli",
    as_of: datetime | None = None,
    on_step: Step | None = None,
    extra_tags: dict[str, str] | None = None,
) -> TrainResult:
    """Run the whole pipeline once. Registers a version only when every gate passes."""
    spec, store = project.spec, project.store
    step = on_step or (lambda _s: None)
    holder = leases.process_holder(uuid.uuid4().hex[:8])
    lease, ttl = f"train:{spec.name}", timedelta(minutes=10)
    if not leases.acquire(store, lease, holder, ttl):
        raise RuntimeFailure(
            f"another training of {spec.name!r} is running ({leases.holder_of(store, lease)})"
        )
    try:
        with leases.Heartbeat(store, lease, holder, ttl):
            return _train(project, reason, actor, as_of, step, extra_tags or {})
    finally:
        leases.release(store, lease, holder)


def _train(
    project: Project,
    reason: str,
    actor: str,
    as_of: datetime | None,
    step: Step,
    extra_tags: dict[str, str],
) -> TrainResult:
    import mlflow
    import onnx
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    t0 = time.perf_counter()
    spec, store = project.spec, project.store
    registry = Registry(project.mlflow_uri, project.mlflow_artifacts)
    trainer = _Trainer(project, registry, step)

    step("data")
    bars, report = checked_bars(spec.data, project.root)
    bars = bars_as_of(bars, as_of)
    snap: Snapshot = write_snapshot(
        bars, project.snapshots_dir, {"validation": report.to_dict(), "source": spec.data.source}
    )
    step("features")
    frame = training_frame(bars, spec)
    closes = bars.select("timestamp", "symbol", "close")
    folds = walk_forward(frame["timestamp"], spec.training.split, spec.labels.horizon)
    base = make_adapter(spec.model, seed=spec.training.seed)
    spec_hash, revision = spec.spec_hash(), code_revision(project.root)
    experiment_id = registry.experiment_id(spec.name)
    run_tags = {
        "tradeloop.reason": reason,
        "tradeloop.pipeline": spec.name,
        "dataset_hash": snap.hash,
        "spec_hash": spec_hash,
        "code_revision": revision,
        **extra_tags,
    }

    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"train-{reason}"[:60], tags=run_tags
    ) as run:
        run_id = run.info.run_id
        crash_point("run_started")
        mlflow.log_input(
            MetaDataset(
                resolve_dataset_source(snap.path),
                name=f"bars-{snap.hash[:12]}",
                digest=snap.hash[:36],
            ),
            context="training",
        )
        tuning = None
        if spec.training.tuning.trials > 0:
            step("tuning")
            tuning = _tune(spec, project, base, frame, folds, snap.hash, run_id)
            base = base.with_params(**tuning["best_params"])
        mlflow.log_params(
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
        fold_info, oos = trainer.folds(base, frame, folds, closes)
        for f in fold_info:
            mlflow.log_metrics(
                {f"fold{f['fold']}_{k}": v for k, v in f["metrics"].items() if k in CARD_METRICS}
            )
        step("backtest")
        result = _backtest(spec, oos, closes)
        metrics = _clean(result.metrics)
        mlflow.log_metrics({f"oos_{k}": v for k, v in metrics.items()})
        champ = registry.by_alias(spec.name, CHAMPION)
        absolute = evaluate_gates(metrics, spec.gates.model_copy(update={"champion": None}))
        vs_champion = trainer.champion_gate(champ, frame, oos, closes)
        gates = GateReport(
            absolute.gates + vs_champion.gates,
            tuple(s for s in absolute.skipped if s != "champion") + vs_champion.skipped,
        )
        gates_doc = gates.to_dict()
        mlflow.log_metric("gates_passed", float(gates.passed))

        step("final model")
        final = _final_rows(frame, spec)
        X, y, _ = xy(final, spec.feature_names)
        model = base.with_params().fit(X, y)
        onnx_bytes = model.to_onnx(spec.feature_names)
        held = X[-min(2000, len(X)) :]
        diff = float(np.max(np.abs(onnx_predict(onnx_bytes, held) - model.predict(held))))
        if diff > PARITY_ATOL:
            raise RuntimeFailure(f"ONNX parity failed: max |onnx - native| = {diff:.2e}")
        mlflow.log_metric("onnx_parity_max_abs_diff", diff)
        schema = model.input_schema(spec.feature_names)
        signature = ModelSignature(
            inputs=Schema([ColSpec("float", n) for n in spec.feature_names]),
            outputs=Schema([ColSpec("float", "prediction")]),
        )
        info = mlflow.onnx.log_model(
            onnx.load_from_string(onnx_bytes),
            name="model",
            signature=signature,
            save_as_external_data=False,
            pip_requirements=_serving_requirements(),  # inferring them costs ~15 s
        )
        crash_point("model_logged")
        onnx_sha = sha256_file(registry.model_dir(_as_source(info.model_uri)) / ONNX_FILE)

        step("artifacts")
        lineage = {
            "dataset_hash": snap.hash,
            "onnx_sha256": onnx_sha,
            "spec_hash": spec_hash,
            "code_revision": revision,
            "features": json.dumps(spec.feature_names),
            "gates_passed": str(gates.passed).lower(),
            "training_run": run_id,
            "reason": reason,
            "model_type": spec.model.type,
            "task": spec.model.task,
            "horizon": str(spec.labels.horizon),
            "trained_at": project.clock.now().isoformat(),
            "data_end": snap.end,
            **{f"metric.{k}": f"{v:.6g}" for k, v in metrics.items() if k in CARD_METRICS},
        }
        card_info = {
            "name": spec.name,
            "version": None,
            "label": spec.labels.kind,
            "horizon": spec.labels.horizon,
            "data": {
                "hash": snap.hash,
                "rows": snap.rows,
                "symbols": snap.symbols,
                "start": snap.start,
                "end": snap.end,
                "source": spec.data.source,
                "frequency": format_duration(spec.data.frequency),
                "warnings": len(report.warnings),
            },
            "features": [f.model_dump(exclude_none=True) for f in spec.features],
            "model": base.describe(),
            "training": {
                "scheme": spec.training.split.scheme,
                "embargo": spec.training.split.embargo,
                "rows": final.height,
                "seed": spec.training.seed,
                "tuning": (
                    f"{len(tuning['trials'])} trials, best {tuning['best_value']}"
                    if tuning
                    else None
                ),
            },
            "folds": fold_info,
            "backtest": metrics,
            "gates": gates_doc,
            "costs": {
                "cost_bps": spec.backtest.cost_bps,
                "slippage_bps": spec.backtest.slippage_bps,
            },
            "lineage": lineage,
        }
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "input_schema.json").write_text(schema.to_json())
            (d / "validation_report.json").write_text(json.dumps(report.to_dict(), indent=2))
            (d / "gates.json").write_text(json.dumps(gates_doc, indent=2))
            (d / "folds.json").write_text(json.dumps(fold_info, indent=2, default=str))
            (d / "backtest.json").write_text(json.dumps(metrics, indent=2))
            (d / "card_info.json").write_text(json.dumps(card_info, indent=2, default=str))
            card_md = render_markdown(card_info)
            (d / "model_card.md").write_text(card_md)
            (d / "model_card.html").write_text(render_html(card_md, f"{spec.name} model card"))
            plot_equity(result, d / "equity_curve.png", title=f"{spec.name}: out-of-sample equity")
            _reference_profile(final, spec, model, X, d)
            mlflow.log_artifacts(str(d))
        crash_point("artifacts_logged")

        version = None
        if gates.passed:
            step("register")
            registry.cleanup_incomplete(spec.name)  # we hold the training lease
            tags = {**lineage, "approval": "pending"}
            mv = _register(registry, spec.name, info.model_uri, run_id, tags)
            version = mv.version
            store.audit.append(
                actor,
                "model.register",
                f"model:{spec.name}/{version}",
                {
                    "run_id": run_id,
                    "dataset_hash": snap.hash,
                    "onnx_sha256": onnx_sha,
                    "reason": reason,
                    "alias": CHALLENGER,
                },
            )
        store.audit.append(
            actor,
            "training.run",
            f"model:{spec.name}",
            {
                "run_id": run_id,
                "reason": reason,
                "dataset_hash": snap.hash,
                "gates_passed": gates.passed,
                "version": version,
                "failed_gates": [g["name"] for g in gates_doc["gates"] if not g["passed"]],
            },
        )
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
    )


def _final_rows(frame: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """All labelled rows (expanding), or the latest `train_bars` bars (sliding): the final model
    sees the same kind of window its walk-forward folds were judged on."""
    split = spec.training.split
    if split.scheme != "sliding":
        return frame
    window = split.train_bars or split.min_train_bars
    times = frame["timestamp"].unique().sort()
    return frame.filter(pl.col("timestamp") >= times[max(0, times.len() - window)])


def _serving_requirements() -> list[str]:
    from importlib.metadata import version

    return [
        f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "onnx", "onnxruntime", "numpy", "pandas")
    ]


def _as_source(model_uri: str) -> ModelVersion:
    return ModelVersion(name="", version="", run_id=None, source=model_uri, tags={})


def _register(
    registry: Registry, name: str, model_uri: str, run_id: str, tags: dict[str, str]
) -> ModelVersion:
    crash_point("before_register")
    return registry.register(name, model_uri, run_id, tags, alias=CHALLENGER)


def _reference_profile(
    frame: pl.DataFrame, spec: Spec, model: ModelAdapter, X: np.ndarray, out: Path
) -> None:
    """What the model saw (features and its predictions), so monitoring never re-reads data."""
    from tradeloop.monitoring.drift import ReferenceProfile

    table = frame.select(spec.feature_names).with_columns(
        pl.Series("prediction", model.predict(X).astype(np.float64))
    )
    profile = ReferenceProfile.from_table(table)
    (out / "reference_profile.json").write_text(json.dumps(profile.to_dict()))


def _sharpe_scorer(spec: Spec) -> Callable[[np.ndarray, np.ndarray], float]:
    """After-cost Sharpe of threshold positions on pooled rows, for ranking trials.

    Rows are pooled across symbols, so turnover is unknown: costs are charged on every bar with
    a position, an upper bound that makes the search prefer fewer, surer trades.
    """
    from tradeloop.evaluation.backtest import signal_thresholds

    long_t, short_t = signal_thresholds(spec.backtest, spec.model.task)
    cost = (spec.backtest.cost_bps + spec.backtest.slippage_bps) / 1e4
    allow_short = spec.backtest.allow_short

    def score(fwd: np.ndarray, pred: np.ndarray) -> float:
        short = (pred < short_t) & allow_short
        pos = np.where(pred > long_t, 1.0, np.where(short, -1.0, 0.0))
        pnl = pos * fwd - cost * np.abs(pos)
        sd = float(pnl.std())
        return float(pnl.mean() / sd) if sd > 0 else 0.0

    return score


def _tune(
    spec: Spec,
    project: Project,
    base: ModelAdapter,
    frame: pl.DataFrame,
    folds: list[Fold],
    dataset_hash: str,
    parent_run: str,
) -> dict[str, Any]:
    """Optuna inside the training data only: inner walk-forward folds on the rows before the
    first out-of-sample block, so the reported fold metrics stay untouched by the search."""
    import mlflow
    import optuna

    from tradeloop.spec import SplitSpec
    from tradeloop.training.tuning import make_scorer, tune

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    X, y, fwd = xy(frame, spec.feature_names)
    outer_train = folds[0].train
    inner_split = SplitSpec(
        scheme="expanding", folds=2, min_train_bars=max(10, spec.training.split.min_train_bars // 2)
    )
    inner = walk_forward(frame[outer_train]["timestamp"], inner_split, spec.labels.horizon)
    score_fn = (
        _sharpe_scorer(spec)
        if spec.training.tuning.metric == "sharpe"
        else make_scorer(spec.training.tuning.metric, spec.model.task)
    )

    def log_trial(record: dict[str, Any]) -> None:
        with mlflow.start_run(
            nested=True,
            run_name=f"trial-{record.get('number')}",
            tags={"mlflow.parentRunId": parent_run},
        ):
            mlflow.log_params(dict(record.get("params") or {}))
            if record.get("value") is not None:
                mlflow.log_metric("objective", float(record["value"]))

    res = tune(
        base,
        spec.training,
        X[outer_train],
        y[outer_train],
        inner,
        score_fn,
        storage_url=project.db_url,
        study_name=f"{spec.name}-{dataset_hash[:12]}-{spec.spec_hash()[:8]}",
        on_trial=log_trial,
        y_eval=fwd[outer_train],
    )
    return res.to_dict()


def _champion_only(report: GateReport) -> GateReport:
    """The champion gate alone: the absolute gates are checked (and skipped) elsewhere, and
    listing them again as skipped here made `gates.skipped` name gates that had passed."""
    return GateReport(report.gates, ())
