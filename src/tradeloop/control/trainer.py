"""The Trainer: decides whether a new model is needed, and trains once per reason.

Reasons, checked in order: a retraining request POSTed to the gateway (`store/retrain_requests`,
keyed by the client's id); no model exists; a named alert (`retraining.on`) is firing; the
champion is older than `retraining.max_age`; the `retraining.schedule` cron is due. Each reason
has a key (the alert's firing episode, the champion version, the cron tick), recorded in
`training_triggers` under a unique constraint *before* training starts: the same trigger never
trains twice, across restarts and replicas. A trigger whose training died (its row says
`running` but no training lease is held) is resumed, which is safe because an unfinished
registration leaves nothing behind; one killed after its version was complete is finished
instead (`training.bookkeeping.recover`: the trigger is marked done with that version, and its
audit entry written). Every reconcile with the training lease free first collects what dead
trainings left (RUNNING runs, orphaned models). While a challenger is still being rolled out, no new
training starts: one experiment at a time.

Given a `JobRunner` (as `tradeloop up` and `controller run` build it), training runs as a job
process, never in this one (`control/trainer_jobs.py`); without one it runs in-process, as the
SimulatedClock tests drive it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tradeloop.clock import utc
from tradeloop.control import trainer_jobs
from tradeloop.control.jobs import JobRunner
from tradeloop.control.reconciler import Context, Result
from tradeloop.control.world import World
from tradeloop.registry.mlflow_registry import CHALLENGER, CHAMPION
from tradeloop.spec import Spec
from tradeloop.store import alerts as store_alerts
from tradeloop.store import leases
from tradeloop.store import retrain_requests as requests
from tradeloop.store.alerts import AlertRecord
from tradeloop.store.tables import rollouts, training_triggers


@dataclass(frozen=True)
class Trigger:
    key: str
    reason: str


def firing_alerts(world: World, model: str | None = None) -> list[AlertRecord]:
    """Firing alerts, only this pipeline's when `model` is given (a project runs many)."""
    labels = {"model": model} if model is not None else None
    return store_alerts.firing_alerts(world.store, labels=labels)


def due_trigger(world: World, spec: Spec, now: datetime) -> Trigger | None:
    asked = requests.oldest_request(world.store, spec.name)
    if asked is not None:
        return Trigger(asked[0], f"requested: {asked[1]}")
    versions = world.registry.versions(spec.name)
    if not versions:
        return Trigger("initial", "no model exists")
    r = spec.retraining
    for a in firing_alerts(world, spec.name):
        if a.rule in r.on:
            started = utc(a.started_at).isoformat()
            return Trigger(f"alert:{a.rule}:{started}", f"alert {a.rule} firing since {started}")
    champ = world.registry.by_alias(spec.name, CHAMPION)
    if champ is not None and r.max_age is not None:
        trained = datetime.fromisoformat(champ.tags.get("trained_at", now.isoformat()))
        if now - trained >= r.max_age:
            return Trigger(
                f"max_age:{champ.version}", f"champion v{champ.version} is older than {r.max_age}"
            )
    if r.schedule is not None:
        from croniter import croniter

        anchor = versions[-1].tags.get("trained_at")
        base = datetime.fromisoformat(anchor) if anchor else now - timedelta(days=366)
        tick = croniter(r.schedule, base).get_next(datetime)
        if tick <= now:
            return Trigger(f"schedule:{tick.isoformat()}", f"schedule {r.schedule!r} due at {tick}")
    return None


def rollout_in_flight(world: World, name: str) -> bool:
    chal = world.registry.by_alias(name, CHALLENGER)
    if chal is None or chal.rejected:
        return False
    with world.store.engine.connect() as c:
        row = c.execute(
            select(rollouts.c.phase).where(
                rollouts.c.model_name == name, rollouts.c.version == chal.version
            )
        ).first()
    return row is None or row.phase not in ("promoted", "rolled_back")


RECOVERY_INTERVAL = timedelta(minutes=10)


class TrainerController:
    name = "trainer"

    def __init__(
        self, interval: timedelta = timedelta(minutes=30), runner: JobRunner | None = None
    ) -> None:
        self.interval = interval
        self.runner = runner  # None: train in this process
        self._recovered_at: dict[str, datetime] = {}

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()

    def _recovery_due(self, name: str, now: datetime) -> bool:
        """The full sweep for what dead trainings left (RUNNING runs, orphaned versions) costs
        a dozen registry queries, ~0.3 s: run it on this process's first reconcile, whenever
        a trigger is stuck `running` (a training died), and otherwise every
        RECOVERY_INTERVAL. Losing this memory is safe: a restarted trainer sweeps at once."""
        last = self._recovered_at.get(name)
        return last is None or now - last >= RECOVERY_INTERVAL

    def reconcile(self, ctx: Context) -> Result:
        world: World = ctx.extras["world"]
        desired = world.desired()
        spec = desired.spec
        now = ctx.clock.now()
        if self.runner is not None:
            busy = trainer_jobs.observe(ctx, world.store, spec, self.runner)
            if busy is not None:
                return busy  # a job of this pipeline is queued or running
        resumed = self._resumable(world, spec.name)
        due = resumed is not None or self._recovery_due(spec.name, now)
        if due and leases.holder_of(world.store, f"train:{spec.name}") is None:
            from tradeloop.training.pipeline import recover_training

            self._recovered_at[spec.name] = now

            rec = recover_training(world.project_for(spec), "trainer", world.registry)
            if rec.finished:
                ctx.emit("recovered", versions=rec.finished)
            if resumed is not None and self._status(world, spec.name, resumed.key) != "running":
                return Result(message=f"{resumed.key}: recovered v{','.join(rec.finished)}")
        if rollout_in_flight(world, spec.name):
            return Result(message="a challenger is in rollout; not training")
        trig = resumed or due_trigger(world, spec, now)
        if trig is None:
            return Result(message="nothing to do")
        if not self._claim(world, spec.name, trig):
            return Result(message=f"trigger {trig.key} already handled")
        if self.runner is not None:
            return trainer_jobs.launch(
                ctx, world.store, spec, self.runner, trig.key, trig.reason, desired.spec_sha
            )
        ctx.emit("train", reason=trig.reason, trigger=trig.key)
        from tradeloop.training.pipeline import train

        result = train(
            world.project_for(spec),
            reason=trig.reason,
            actor="trainer",
            as_of=now,
            extra_tags={"tradeloop.trigger": trig.key, "tradeloop.spec_commit": desired.spec_sha},
        )
        status = "registered" if result.version else "gated"  # recorded by the pipeline
        if result.version:
            ctx.emit(
                "registered",
                version=result.version,
                reason=trig.reason,
                sharpe=result.metrics.get("sharpe"),
            )
        else:
            ctx.emit("gated", reason=f"gates failed: {result.gates['failed']}", trigger=trig.key)
        return Result(message=f"{trig.key}: {status} {result.version or ''}".strip())

    def _claim(self, world: World, name: str, trig: Trigger) -> bool:
        now = world.clock.now()
        try:
            with world.store.begin() as c:
                existing = c.execute(
                    select(training_triggers.c.status).where(
                        training_triggers.c.model_name == name,
                        training_triggers.c.trigger_key == trig.key,
                    )
                ).first()
                if existing is not None and existing.status == requests.REQUESTED:
                    if not requests.claim_request(c, name, trig.key, now):
                        return False  # a replica claimed it first
                elif existing is not None:
                    return bool(existing.status == "running")  # resumed after a crash
                else:
                    c.execute(
                        training_triggers.insert().values(
                            model_name=name,
                            trigger_key=trig.key,
                            reason=trig.reason,
                            status="running",
                            created_at=now,
                            updated_at=now,
                        )
                    )
                world.store.audit.append(
                    "trainer",
                    "training.trigger",
                    f"model:{name}",
                    {"trigger": trig.key, "reason": trig.reason},
                    conn=c,
                )
            return True
        except IntegrityError:
            return False  # a replica claimed it first

    def _status(self, world: World, name: str, key: str) -> str | None:
        with world.store.engine.connect() as c:
            return c.execute(
                select(training_triggers.c.status).where(
                    training_triggers.c.model_name == name,
                    training_triggers.c.trigger_key == key,
                )
            ).scalar()

    def _resumable(self, world: World, name: str) -> Trigger | None:
        """A trigger left `running` by a training that died (nobody holds its lease)."""
        if leases.holder_of(world.store, f"train:{name}") is not None:
            return None
        with world.store.engine.connect() as c:
            row = c.execute(
                select(training_triggers).where(
                    training_triggers.c.model_name == name, training_triggers.c.status == "running"
                )
            ).first()
        return Trigger(row.trigger_key, row.reason) if row else None
