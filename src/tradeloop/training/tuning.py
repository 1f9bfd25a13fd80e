"""Hyperparameter search with Optuna, scored on purged folds of the training data.

Why Optuna's RDB storage: trials live in the same SQL database as the rest of tradeloop's state
(SQLite by default, PostgreSQL at scale), so several processes or Kubernetes Jobs that open the
same study name share one search, and a killed tuning run resumes where it stopped.

Pass folds built on the training period only (e.g. `walk_forward` over the rows before the
final evaluation window): choosing parameters on the folds you then report is selection bias.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np
import optuna

from tradeloop.clock import Clock, WallClock
from tradeloop.errors import BadInput, RuntimeFailure
from tradeloop.spec import TrainingSpec
from tradeloop.training.adapters import ModelAdapter, Task

ScoreFn = Callable[[np.ndarray, np.ndarray], float]
SearchSpace = Callable[[optuna.Trial], dict[str, Any]]
PG_SCHEMA = "optuna"


class FoldLike(Protocol):
    @property
    def train(self) -> np.ndarray: ...
    @property
    def test(self) -> np.ndarray: ...


class _NonFiniteScore(RuntimeFailure):
    pass


@dataclass(frozen=True)
class TuningResult:
    """The best parameters over every trial in the study, and each trial as a plain dict."""

    study_name: str
    best_params: dict[str, Any]
    best_value: float | None  # None when no trial completed (then best_params is {})
    trials: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_name": self.study_name,
            "best_params": self.best_params,
            "best_value": self.best_value,
            "trials": self.trials,
        }


# ------------------------------------------------------------------------------ search spaces


def lightgbm_space(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "num_leaves": trial.suggest_int("num_leaves", 4, 63, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "n_estimators": trial.suggest_int("n_estimators", 50, 400, step=50),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 200, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


def linear_space(trial: optuna.Trial) -> dict[str, Any]:
    return {"alpha": trial.suggest_float("alpha", 1e-4, 1e2, log=True)}


SEARCH_SPACES: dict[str, SearchSpace] = {"lightgbm": lightgbm_space, "linear": linear_space}


# ------------------------------------------------------------------------------------ scorers


def ic_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Information coefficient: Spearman rank correlation; 0.0 when either side is constant."""
    a = _ranks(np.asarray(y_true, dtype=np.float64).reshape(-1))
    b = _ranks(np.asarray(y_pred, dtype=np.float64).reshape(-1))
    if a.size != b.size:
        raise BadInput(f"y_true has {a.size} values, y_pred {b.size}")
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def hit_rate_score(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    pred_threshold: float = 0.5,
    true_threshold: float = 0.0,
) -> float:
    """Share of rows where the predicted side (pred > threshold) matches the outcome's side.

    The outcome threshold 0 suits both outcomes a caller has: 0/1 labels and forward returns
    (label = 1 exactly when fwd_return > 0), so y_eval can be either.
    """
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if t.size != p.size:
        raise BadInput(f"y_true has {t.size} values, y_pred {p.size}")
    if t.size == 0:
        return 0.0
    return float(np.mean((p > pred_threshold) == (t > true_threshold)))


def make_scorer(metric: str, task: Task) -> ScoreFn:
    """The built-in scorer for `training.tuning.metric` (sharpe needs the backtest's own)."""
    if metric == "ic":
        return ic_score
    if metric == "hit_rate":
        cut = 0.5 if task == "classification" else 0.0
        return partial(hit_rate_score, pred_threshold=cut, true_threshold=0.0)
    raise BadInput(
        f"no built-in scorer for metric {metric!r}: pass score_fn (e.g. after-cost Sharpe)"
    )


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    ranks: np.ndarray = rankdata(x, method="average")
    return ranks


# ------------------------------------------------------------------------------------ storage


def open_storage(storage_url: str | None) -> optuna.storages.BaseStorage | None:
    """Optuna's RDB storage on tradeloop's database URL (None: in memory).

    On PostgreSQL the Optuna tables go into their own schema (`optuna`), so Optuna's generic
    table names (studies, trials, version_info) and its `alembic_version` never collide with
    tradeloop's own tables and migrations in the same database.
    """
    if storage_url is None:
        return None
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if storage_url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 30}  # wait for other writers, as the store does
    elif storage_url.startswith("postgresql"):
        _ensure_pg_schema(storage_url)
        engine_kwargs["connect_args"] = {"options": f"-csearch_path={PG_SCHEMA}"}
    try:
        return optuna.storages.RDBStorage(storage_url, engine_kwargs=engine_kwargs)
    except RuntimeError as exc:  # schema version mismatch, e.g. a foreign alembic_version table
        raise RuntimeFailure(
            f"cannot use Optuna storage at {_safe(storage_url)}: {exc} (Optuna keeps its schema "
            "revision in the database's default `alembic_version` table; if another application's "
            "migrations use that table too, give them their own version_table)"
        ) from exc
    except Exception as exc:  # driver and connection errors surface as many types
        raise RuntimeFailure(f"cannot open Optuna storage at {_safe(storage_url)}: {exc}") from exc


def _ensure_pg_schema(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{PG_SCHEMA}"'))
    except sa.exc.IntegrityError:
        pass  # another process created it concurrently
    except sa.exc.SQLAlchemyError as exc:
        raise RuntimeFailure(f"cannot prepare Optuna schema at {_safe(url)}: {exc}") from exc
    finally:
        engine.dispose()


def _safe(url: str) -> str:
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"


# ---------------------------------------------------------------------------------------- tune


def tune(
    adapter_factory: ModelAdapter | Callable[..., ModelAdapter],
    spec: TrainingSpec,
    X: np.ndarray,
    y: np.ndarray,
    folds: Sequence[FoldLike],
    score_fn: ScoreFn | None,
    storage_url: str | None = None,
    study_name: str = "tradeloop",
    on_trial: Callable[[dict[str, Any]], None] | None = None,
    *,
    y_eval: np.ndarray | None = None,
    search_space: SearchSpace | None = None,
    clock: Clock | None = None,
    on_fold: Callable[[int, int, np.ndarray], None] | None = None,
) -> TuningResult:
    """Search hyperparameters: objective = mean of score_fn(y_eval[test], predict) over folds.

    `adapter_factory(**params)` makes an unfitted adapter (pass an adapter to use its
    `with_params`); `adapter_factory()` tells the model type, hence the default search space.
    `spec.tuning` gives the budget (`trials`, `timeout`); `spec.seed` seeds the TPE sampler.
    `score_fn` None: the built-in scorer for `spec.tuning.metric` (ic, hit_rate; sharpe needs
    the backtest's, so pass it). `y_eval` is what the scorer sees as y_true (default y), e.g. forward returns for a Sharpe
    while the model learns the sign label. `on_trial(record)` runs after each trial this call
    ran (complete, pruned past the deadline, or failed). Trials already in the study count
    towards the best result, and a study name reused with the same storage adds to it.
    `clock` (default the wall clock) measures the `timeout` budget: the search stops between
    folds and between trials once it is spent. `on_fold(trial number, fold index, predictions)`
    sees each fold's out-of-fold predictions (what PBO and the deflated Sharpe compare).
    """
    budget = spec.tuning
    factory = (
        adapter_factory.with_params
        if isinstance(adapter_factory, ModelAdapter)
        else adapter_factory
    )
    if budget.trials == 0:
        return TuningResult(study_name=study_name, best_params={}, best_value=None)
    if not folds:
        raise BadInput("tuning needs at least one fold")
    base = factory()
    score_fn = score_fn or make_scorer(budget.metric, base.task)
    space = search_space or SEARCH_SPACES.get(base.model_type)
    if space is None:
        raise BadInput(f"no search space for model type {base.model_type!r}")
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    target = y if y_eval is None else np.asarray(y_eval)
    if not (X.shape[0] == y.shape[0] == target.shape[0]):
        raise BadInput(
            f"X, y and y_eval must have the same rows: {X.shape[0]}, {y.shape[0]}, {target.shape[0]}"
        )

    clock = clock or WallClock()
    deadline = clock.now() + budget.timeout

    def spent() -> bool:
        return clock.now() > deadline

    def objective(trial: optuna.Trial) -> float:
        params = space(trial)
        scores: list[float] = []
        for k, fold in enumerate(folds):
            if k and spent():
                # the budget is spent: stop between folds rather than overrun it by a whole trial
                trial.set_user_attr("fold_scores", scores)
                raise optuna.TrialPruned(f"timeout after {k} of {len(folds)} folds")
            model = factory(**params).fit(X[fold.train], y[fold.train])
            pred = model.predict(X[fold.test])
            if on_fold is not None:
                on_fold(trial.number, k, pred)
            score = float(score_fn(target[fold.test], pred))
            scores.append(score)
            trial.report(score, k)
        trial.set_user_attr("fold_scores", scores)
        value = float(np.mean(scores))
        if not math.isfinite(value):
            raise _NonFiniteScore(f"score_fn returned a non-finite score: {scores}")
        return value

    study = optuna.create_study(
        study_name=study_name,
        storage=open_storage(storage_url),
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=spec.seed),
        load_if_exists=True,
    )

    def after_trial(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None:
            on_trial(_record(frozen))
        if spent():  # on `clock`, not Optuna's own timer, so a simulated clock can drive it
            study.stop()

    study.optimize(
        objective,
        n_trials=budget.trials,
        callbacks=[after_trial],
        catch=(_NonFiniteScore,),  # that trial fails (state FAIL); the search goes on
        gc_after_trial=False,
        show_progress_bar=False,
    )
    trials = [_record(t) for t in study.get_trials(deepcopy=False)]
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    if not complete:
        return TuningResult(study_name=study_name, best_params={}, best_value=None, trials=trials)
    best = study.best_trial
    return TuningResult(
        study_name=study_name,
        best_params=dict(best.params),
        best_value=float(best.value) if best.value is not None else None,
        trials=trials,
    )


def _record(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A trial as JSON-able data for MLflow (nested run params/metrics) and reports."""
    duration = t.duration.total_seconds() if t.duration is not None else None
    return {
        "number": t.number,
        "state": t.state.name,
        "value": float(t.value) if t.value is not None else None,
        "params": dict(t.params),
        "fold_scores": list(t.user_attrs.get("fold_scores", [])),
        "duration_s": duration,
        "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
    }
