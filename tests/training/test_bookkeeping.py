"""Recording a training's outcome is one idempotent transaction (audit entries + trigger)."""

from __future__ import annotations

from sqlalchemy import select

from tradeloop.store import Store
from tradeloop.store.tables import training_triggers
from tradeloop.training.bookkeeping import Outcome, record


def _trigger(store: Store, key: str) -> None:
    now = store.clock.now()
    with store.begin() as c:
        c.execute(
            training_triggers.insert().values(
                model_name="m",
                trigger_key=key,
                reason="r",
                status="running",
                created_at=now,
                updated_at=now,
            )
        )


def _rows(store: Store) -> list[tuple[str, str, str | None]]:
    with store.engine.connect() as c:
        rows = c.execute(select(training_triggers).order_by(training_triggers.c.id)).all()
    return [(r.trigger_key, r.status, r.version) for r in rows]


def test_recording_twice_writes_once(store: Store) -> None:
    _trigger(store, "initial")
    done = Outcome("m", "run1", "no model", "hash", version="1", onnx_sha256="s", trigger="initial")
    assert record(store, done, "trainer")
    assert not record(store, done, "trainer")  # a recovery repeating the step changes nothing
    assert [e.action for e in store.audit.list()] == ["model.register", "training.run"]
    assert store.audit.list(action="model.register")[0].subject == "model:m/1"
    assert _rows(store) == [("initial", "registered", "1")]
    assert store.audit.verify().ok


def test_a_gated_outcome_marks_the_trigger_gated(store: Store) -> None:
    _trigger(store, "alert:x")
    gated = Outcome("m", "run2", "alert", "hash", trigger="alert:x", failed_gates=["sharpe"])
    assert record(store, gated, "trainer")
    (entry,) = store.audit.list()
    assert entry.action == "training.run" and entry.payload["failed_gates"] == ["sharpe"]
    assert _rows(store) == [("alert:x", "gated", None)]


def test_a_manual_training_has_no_trigger_to_mark(store: Store) -> None:
    _trigger(store, "initial")
    assert record(store, Outcome("m", "run3", "manual", "h", version="4"), "cli")
    assert _rows(store) == [("initial", "running", None)]  # someone else's trigger: untouched
