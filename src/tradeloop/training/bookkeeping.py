"""A training's outcome recorded in one idempotent step, and finished after a kill.

MLflow and the operational store cannot share a transaction, so the order is fixed: the
version is marked complete in MLflow first, then one operational transaction writes the
`model.register` and `training.run` audit entries and marks the trigger done. Running that
transaction again changes nothing (it looks for its own audit entry first). A training killed
between the two leaves a complete version without its entry; `recover` (run by the next holder
of the training lease) finds it through the run's tags and finishes the step, so the trigger
is marked done with that version instead of being trained again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select, update

from tradeloop.registry.mlflow_registry import CHALLENGER, ModelVersion, Registry
from tradeloop.registry.recovery import HOLDER_TAG, collect_crashed
from tradeloop.store import Store
from tradeloop.store.tables import audit_log, training_triggers

TRIGGER_TAG = "tradeloop.trigger"


@dataclass(frozen=True)
class Outcome:
    """What one training produced, as the audit and trigger rows record it."""

    name: str
    run_id: str
    reason: str
    dataset_hash: str
    version: str | None = None
    onnx_sha256: str | None = None
    trigger: str | None = None
    failed_gates: list[str] = field(default_factory=list)


def _has_entry(c: Connection, action: str, subject: str) -> bool:
    q = select(audit_log.c.id).where(audit_log.c.action == action, audit_log.c.subject == subject)
    return c.execute(q.limit(1)).first() is not None


def record(store: Store, outcome: Outcome, actor: str) -> bool:
    """Audit entries and trigger status for `outcome`, in one transaction; False if already
    recorded (then nothing is written)."""
    o = outcome
    subject = f"model:{o.name}/{o.version}" if o.version else f"model:{o.name}"
    with store.begin() as c:
        if o.version is not None:
            if _has_entry(c, "model.register", subject):
                return False
            store.audit.append(
                actor,
                "model.register",
                subject,
                {
                    "run_id": o.run_id,
                    "dataset_hash": o.dataset_hash,
                    "onnx_sha256": o.onnx_sha256,
                    "reason": o.reason,
                    "alias": CHALLENGER,
                },
                conn=c,
            )
        store.audit.append(
            actor,
            "training.run",
            f"model:{o.name}",
            {
                "run_id": o.run_id,
                "reason": o.reason,
                "dataset_hash": o.dataset_hash,
                "gates_passed": o.version is not None,
                "version": o.version,
                "failed_gates": o.failed_gates,
            },
            conn=c,
        )
        if o.trigger is not None:
            c.execute(
                update(training_triggers)
                .where(
                    training_triggers.c.model_name == o.name,
                    training_triggers.c.trigger_key == o.trigger,
                )
                .values(
                    status="registered" if o.version else "gated",
                    run_id=o.run_id,
                    version=o.version,
                    updated_at=store.clock.now(),
                )
            )
    return True


def _unrecorded(store: Store, registry: Registry, name: str) -> list[ModelVersion]:
    with store.engine.connect() as c:
        recorded = set(
            c.execute(
                select(audit_log.c.subject).where(
                    audit_log.c.action == "model.register",
                    audit_log.c.subject.like(f"model:{name}/%"),
                )
            ).scalars()
        )
    return [v for v in registry.versions(name) if f"model:{name}/{v.version}" not in recorded]


@dataclass
class Recovery:
    cleanup: dict[str, Any]
    finished: list[str]  # versions whose bookkeeping was completed now

    def to_dict(self) -> dict[str, Any]:
        return {**self.cleanup, "finished_versions": self.finished}


def recover(store: Store, registry: Registry, name: str, holder: str, actor: str) -> Recovery:
    """Clean up after dead trainings and finish their bookkeeping. Hold the training lease."""
    cleanup = collect_crashed(registry, name, holder)
    finished = []
    for v in _unrecorded(store, registry, name):
        run = registry.client.get_run(v.run_id) if v.run_id else None
        tags = run.data.tags if run is not None else {}
        if HOLDER_TAG not in tags:
            continue  # not registered by a training (a demo variant): not ours to record
        outcome = Outcome(
            name,
            v.run_id or "",
            tags.get("tradeloop.reason", v.tags.get("reason", "")),
            v.tags.get("dataset_hash", ""),
            version=v.version,
            onnx_sha256=v.tags.get("onnx_sha256"),
            trigger=tags.get(TRIGGER_TAG),
        )
        if record(store, outcome, actor):
            finished.append(v.version)
    done = Recovery(cleanup.to_dict(), finished)
    if cleanup or finished:
        store.audit.append(actor, "training.recover", f"model:{name}", done.to_dict())
    return done
