from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import optuna
import pytest
import sqlalchemy as sa

from tradeloop.clock import SimulatedClock
from tradeloop.errors import BadInput
from tradeloop.spec import LightGBMModel, LinearModel, SplitSpec, TrainingSpec, TuningSpec
from tradeloop.training.adapters import make_adapter
from tradeloop.training.splits import Fold, walk_forward
from tradeloop.training.tuning import (
    PG_SCHEMA,
    hit_rate_score,
    ic_score,
    make_scorer,
    open_storage,
    tune,
)

PG_URL = os.environ.get(
    "TRADELOOP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def training(trials: int, timeout: str = "60s", seed: int = 42) -> TrainingSpec:
    return TrainingSpec(tuning=TuningSpec(trials=trials, timeout=timeout), seed=seed)


def data(n_bars: int = 300, n_symbols: int = 2) -> tuple[np.ndarray, np.ndarray, list[Fold]]:
    rng = np.random.default_rng(0)
    n = n_bars * n_symbols
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = ((X[:, 0] + rng.normal(size=n)) > 0).astype(np.float64)
    ts = np.tile(np.arange(n_bars), n_symbols)  # symbol-major rows, as the bars contract sorts
    folds = walk_forward(ts, SplitSpec(folds=3, min_train_bars=120), horizon=1)
    return X, y, folds


LINEAR = make_adapter(LinearModel(type="linear"), seed=1)
START = datetime(2024, 1, 1, tzinfo=UTC)  # SimulatedClock's default start


def test_sqlite_study_scores_folds_and_reports_each_trial(tmp_path: Path) -> None:
    X, y, folds = data()
    seen: list[dict] = []
    result = tune(
        LINEAR,
        training(4),
        X,
        y,
        folds,
        ic_score,
        storage_url=f"sqlite:///{tmp_path / 'state.db'}",
        study_name="sq",
        on_trial=seen.append,
    )
    assert [t["number"] for t in seen] == [0, 1, 2, 3]
    assert all(t["state"] == "COMPLETE" and len(t["fold_scores"]) == 3 for t in seen)
    assert result.trials == seen
    assert result.best_value == max(t["value"] for t in seen)
    assert set(result.best_params) == {"alpha"}
    # the objective is the mean over folds of score_fn on the test rows
    model = LINEAR.with_params(**result.best_params)
    expect = np.mean(
        [ic_score(y[f.test], model.fit(X[f.train], y[f.train]).predict(X[f.test])) for f in folds]
    )
    assert result.best_value == pytest.approx(expect, abs=1e-12)
    assert result.best_value > 0.2  # X[:, 0] carries the signal


def test_two_calls_share_one_sqlite_study(tmp_path: Path) -> None:
    X, y, folds = data()
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first = tune(LINEAR, training(3), X, y, folds, ic_score, storage_url=url, study_name="shared")
    second = tune(LINEAR, training(2), X, y, folds, ic_score, storage_url=url, study_name="shared")
    assert len(first.trials) == 3
    assert [t["number"] for t in second.trials] == [0, 1, 2, 3, 4]
    assert second.best_value == max(t["value"] for t in second.trials)
    other = tune(LINEAR, training(1), X, y, folds, ic_score, storage_url=url, study_name="other")
    assert len(other.trials) == 1
    stored = optuna.load_study(study_name="shared", storage=open_storage(url))
    assert len(stored.trials) == 5


def test_tuning_shares_the_store_database(tmp_path: Path) -> None:
    from tradeloop.store.engine import make_engine, migrate, table_names

    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = make_engine(url)
    migrate(engine)
    X, y, folds = data()
    result = tune(LINEAR, training(1), X, y, folds, ic_score, storage_url=url, study_name="s")
    assert len(result.trials) == 1
    migrate(engine)  # the next start still migrates
    assert {"trials", "deployments"} <= set(table_names(engine))
    engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:
        msg = f"PostgreSQL unreachable at {PG_URL}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{msg} (CI=true: the postgres tests must run)")
        pytest.skip(msg)
    yield PG_URL


@pytest.mark.postgres
def test_two_calls_share_one_postgres_study(pg_url: str) -> None:
    X, y, folds = data()
    name = f"test-{uuid.uuid4().hex}"
    try:
        first = tune(
            LINEAR, training(2), X, y, folds, ic_score, storage_url=pg_url, study_name=name
        )
        second = tune(
            LINEAR, training(2), X, y, folds, ic_score, storage_url=pg_url, study_name=name
        )
        assert len(first.trials) == 2
        assert [t["number"] for t in second.trials] == [0, 1, 2, 3]
        assert all(t["state"] == "COMPLETE" for t in second.trials)
        # Optuna's tables live in their own schema, clear of tradeloop's tables and migrations
        engine = sa.create_engine(pg_url)
        with engine.connect() as conn:
            where = sa.text(
                "select count(*) from information_schema.tables "
                "where table_schema = :s and table_name in ('trials', 'alembic_version')"
            )
            assert conn.execute(where, {"s": PG_SCHEMA}).scalar() == 2
        engine.dispose()
    finally:
        optuna.delete_study(study_name=name, storage=open_storage(pg_url))


def test_same_seed_same_search() -> None:
    X, y, folds = data()
    a = tune(LINEAR, training(4, seed=3), X, y, folds, ic_score, study_name="a")
    b = tune(LINEAR, training(4, seed=3), X, y, folds, ic_score, study_name="b")
    c = tune(LINEAR, training(4, seed=4), X, y, folds, ic_score, study_name="c")
    assert [t["params"] for t in a.trials] == [t["params"] for t in b.trials]
    assert [t["value"] for t in a.trials] == [t["value"] for t in b.trials]
    assert [t["params"] for t in a.trials] != [t["params"] for t in c.trials]


def test_timeout_is_respected_and_stops_between_folds() -> None:
    X, y, folds = data()
    clock = SimulatedClock()

    def slow(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        clock.sleep(0.6)  # each fold's scoring takes 0.6 s of the tuning clock
        return ic_score(y_true, y_pred)

    result = tune(
        LINEAR, training(10_000, timeout="1s"), X, y, folds, slow, study_name="t", clock=clock
    )
    # fold 0 ends at 0.6 s, fold 1 at 1.2 s; fold 2 never starts: past the 1 s budget
    (trial,) = result.trials
    assert trial["state"] == "PRUNED"
    assert len(trial["fold_scores"]) == 2
    assert clock.now() - START == timedelta(seconds=1.2)  # no fold ran past the deadline
    assert result.best_value is None and result.best_params == {}


def test_timeout_stops_the_search_between_trials() -> None:
    X, y, folds = data()
    clock = SimulatedClock()
    scored: list[float] = []

    def timed(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        clock.sleep(0.125)  # a trial (three folds) takes 0.375 s of the tuning clock
        scored.append(ic_score(y_true, y_pred))
        return scored[-1]

    result = tune(
        LINEAR, training(10_000, timeout="1s"), X, y, folds, timed, study_name="t", clock=clock
    )
    # trials 0 and 1 end at 0.375 s and 0.75 s; trial 2 started in budget and runs to the end
    # of its folds (1.125 s); no fourth trial starts after the deadline
    assert [t["state"] for t in result.trials] == ["COMPLETE"] * 3
    assert len(scored) == 9 and clock.now() - START == timedelta(seconds=1.125)
    assert result.best_value is not None


def test_lightgbm_search_space() -> None:
    X, y, folds = data(n_bars=200)
    folds = walk_forward(np.tile(np.arange(200), 2), SplitSpec(folds=2, min_train_bars=100), 1)
    base = make_adapter(LightGBMModel(), seed=1)
    result = tune(base.with_params, training(2), X, y, folds, ic_score, study_name="lgb")
    assert set(result.best_params) == {
        "num_leaves",
        "learning_rate",
        "n_estimators",
        "min_child_samples",
        "subsample",
        "colsample_bytree",
        "reg_lambda",
    }
    for t in result.trials:
        p = t["params"]
        assert 4 <= p["num_leaves"] <= 63 and 0.01 <= p["learning_rate"] <= 0.3
        assert p["n_estimators"] % 50 == 0 and 0.5 <= p["subsample"] <= 1
    assert base.with_params(**result.best_params).fit(X, y).predict(X).shape == (X.shape[0],)


def test_scorer_sees_y_eval() -> None:
    X, y, folds = data()
    a = tune(LINEAR, training(3), X, y, folds, ic_score, study_name="pos")
    b = tune(LINEAR, training(3), X, y, folds, ic_score, study_name="neg", y_eval=-y)
    # the first trials are the seeded sampler's random start, so the same parameters
    assert [t["params"] for t in a.trials] == [t["params"] for t in b.trials]
    assert [t["value"] for t in b.trials] == pytest.approx([-t["value"] for t in a.trials])


def test_non_finite_scores_fail_the_trial_not_the_search() -> None:
    X, y, folds = data()
    result = tune(LINEAR, training(2), X, y, folds, lambda t, p: float("nan"), study_name="nan")
    assert [t["state"] for t in result.trials] == ["FAIL", "FAIL"]
    assert result.best_value is None


def test_zero_trials_disables_the_search(tmp_path: Path) -> None:
    X, y, folds = data()
    db = tmp_path / "state.db"
    result = tune(LINEAR, training(0), X, y, folds, ic_score, storage_url=f"sqlite:///{db}")
    assert result.best_params == {} and result.best_value is None and result.trials == []
    assert not db.exists()


def test_default_scorer_follows_the_spec_metric() -> None:
    X, y, folds = data()
    spec = TrainingSpec(tuning=TuningSpec(trials=1, metric="hit_rate"))
    result = tune(LINEAR, spec, X, y, folds, None, study_name="hr")
    model = LINEAR.with_params(**result.best_params)
    expect = np.mean(
        [
            np.mean((model.fit(X[f.train], y[f.train]).predict(X[f.test]) > 0.5) == y[f.test])
            for f in folds
        ]
    )
    assert result.best_value == pytest.approx(expect)
    with pytest.raises(BadInput, match="pass score_fn"):
        tune(LINEAR, training(1), X, y, folds, None)  # the default metric is sharpe


def test_bad_inputs() -> None:
    X, y, folds = data()
    with pytest.raises(BadInput, match="at least one fold"):
        tune(LINEAR, training(1), X, y, [], ic_score)
    with pytest.raises(BadInput, match="same rows"):
        tune(LINEAR, training(1), X, y[:-1], folds, ic_score)


def test_scorers() -> None:
    t = np.array([0.01, -0.02, 0.03, 0.0, -0.01])
    assert ic_score(t, t * 5 + 1) == pytest.approx(1.0)
    assert ic_score(t, -t) == pytest.approx(-1.0)
    assert ic_score(t, np.ones(5)) == 0.0
    assert hit_rate_score(t, t, pred_threshold=0, true_threshold=0) == 1.0
    labels = np.array([1.0, 0.0, 1.0, 0.0])
    probs = np.array([0.9, 0.2, 0.4, 0.6])
    hit = make_scorer("hit_rate", "classification")
    assert hit(labels, probs) == 0.5
    assert hit(np.array([0.02, -0.01, 0.03, 0.0]), probs) == 0.5  # forward returns, same sides
    assert make_scorer("hit_rate", "regression")(t, -t) == pytest.approx(0.2)  # 0 == 0 side
    assert make_scorer("ic", "regression") is ic_score
    with pytest.raises(BadInput, match="pass score_fn"):
        make_scorer("sharpe", "classification")
