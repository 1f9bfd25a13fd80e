"""The Deployer: makes what serves match git, and drives the challenger's rollout.

Each run: (1) the pinned production version in git (tracked branch) is the champion — if it
differs from what serves (a merged proposal, a manual revert), serving follows git; (2) the
`challenger` alias is rolled out through the phases of `control.rollout`, judged by
`control.analysis`; (3) decisions are written first (`promoting`, `rolling_back`) and their
effects — git commit, registry aliases, traffic — are idempotent, so a restart finishes them.
A rollback is committed straight to the tracked branch, never proposed, so git never claims
what does not run; a rejected version is tagged and never rolled out again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from tradeloop.control import rollout as ro
from tradeloop.control.analysis import gather, observe
from tradeloop.control.reconciler import Context, Result, TerminalError
from tradeloop.control.rollout_store import apply_traffic, approval_of, load_rollout, save_rollout
from tradeloop.control.rollout_strategies import strategy_for_phase
from tradeloop.control.world import World
from tradeloop.errors import BadInput, NotFound
from tradeloop.faults import crash_point
from tradeloop.monitoring.slo import RequestsSince
from tradeloop.registry.champion import promote_version
from tradeloop.registry.mlflow_registry import CHALLENGER, CHAMPION, STATUS_TAG, ModelVersion
from tradeloop.spec import Spec
from tradeloop.store import jobs as store_jobs

# While a training job of the pipeline runs, the deployer looks this often instead of every
# `interval`, so a new challenger (the very first model, on a laptop) is rolled out at once.
JOB_WATCH = timedelta(seconds=5)


class DeployerController:
    name = "deployer"

    def __init__(
        self, interval: timedelta = timedelta(minutes=5), requests: RequestsSince | None = None
    ) -> None:
        """`requests`: the in-process gateway's request counts, for the challenger's error
        rate; without one (a controller apart from its gateways) the error rate is unknown."""
        self.interval = interval
        self.requests = requests

    def reconcile(self, ctx: Context) -> Result:
        world: World = ctx.extras["world"]
        desired = world.desired()
        spec = desired.spec
        name, reg = spec.name, world.registry
        rejected = set(desired.pin.rejected) if desired.pin else set()
        champ = self._follow_git(ctx, world, spec, desired.pin)
        chal = reg.by_alias(name, CHALLENGER)
        if chal is not None and (
            chal.rejected
            or chal.version in rejected
            or (champ is not None and chal.version == champ.version)
        ):
            reg.delete_alias(name, CHALLENGER)
            chal = None
        if chal is None:
            if champ is not None:
                apply_traffic(
                    world,
                    name,
                    ro.Traffic((("champion", champ.version, "live", 100),)),
                    "champion only",
                )
            if store_jobs.active(world.store, name):  # its challenger is on its way: look soon
                return Result(requeue_after=JOB_WATCH, message="no challenger; training runs")
            return Result(message="no challenger")
        return self._roll(ctx, world, spec, champ, chal)

    # ------------------------------------------------------------------ git is the truth

    def _follow_git(self, ctx: Context, world: World, spec: Spec, pin: Any) -> ModelVersion | None:
        reg, name = world.registry, spec.name
        champ = reg.by_alias(name, CHAMPION)
        if pin is None or not pin.version:
            return champ
        if champ is None or champ.version != str(pin.version):
            try:
                promote_version(
                    world.store,
                    reg,
                    name,
                    str(pin.version),
                    actor="deployer",
                    reason=f"git pin on {spec.deployment.git.branch}",
                )
            except NotFound as exc:
                raise TerminalError(
                    f"{spec.deployment.git.pin_file} pins v{pin.version}, which the registry "
                    f"cannot serve: {exc}",
                    "missing_version",
                ) from exc
            except BadInput as exc:  # a rejected version
                raise TerminalError(
                    f"{spec.deployment.git.pin_file} pins v{pin.version}: {exc}", "bad_pin"
                ) from exc
            ctx.emit(
                "follow_git",
                version=str(pin.version),
                reason=f"{spec.deployment.git.pin_file} pins v{pin.version}",
            )
            champ = reg.by_alias(name, CHAMPION)
            r = load_rollout(world, name, str(pin.version))
            if r is not None and r.phase not in ro.TERMINAL:
                save_rollout(
                    world,
                    name,
                    replace(r, phase="promoted", reason="merged in git"),
                    spec.deployment.strategy,
                    None,
                    new=False,
                )
        return champ

    # ------------------------------------------------------------------ the rollout

    def _roll(
        self, ctx: Context, world: World, spec: Spec, champ: ModelVersion | None, chal: ModelVersion
    ) -> Result:
        name, d = spec.name, spec.deployment
        now = ctx.clock.now()
        state = load_rollout(world, name, chal.version)
        if state is None:
            state = ro.start(chal.version, now, d, has_champion=champ is not None)
            save_rollout(world, name, state, d.strategy, None, new=True)
            ctx.emit(
                "rollout_start",
                version=chal.version,
                reason=state.reason,
                strategy=d.strategy,
                phase=state.phase,
            )
        if state.phase in ro.TERMINAL:
            return Result(message=f"v{chal.version} {state.phase}")
        verdict_doc = None
        if state.phase not in ("promoting", "rolling_back", "paused"):
            new, verdict_doc = self._judge(world, spec, state, champ, chal, now)
            if new != state:
                save_rollout(world, name, new, d.strategy, verdict_doc, new=False)
                ctx.emit(
                    self._event(state, new),
                    version=chal.version,
                    reason=new.reason,
                    phase=new.phase,
                    step=new.step,
                    verdict=verdict_doc,
                )
                state = new
        if state.phase == "promoting":
            return self._promote(ctx, world, spec, champ, chal, state)
        if state.phase == "rolling_back":
            return self._rollback(ctx, world, spec, champ, chal, state)
        apply_traffic(
            world,
            name,
            ro.traffic(state, d, champ.version if champ else None),
            f"rollout v{chal.version}: {state.phase} {state.step}",
        )
        return Result(
            requeue_after=min(self.interval, timedelta(minutes=15)),
            message=f"v{chal.version} {state.phase} {state.step}: {state.reason}",
        )

    def _judge(
        self,
        world: World,
        spec: Spec,
        state: ro.RolloutState,
        champ: ModelVersion | None,
        chal: ModelVersion,
        now: datetime,
    ) -> tuple[ro.RolloutState, dict[str, Any] | None]:
        approval = approval_of(world, spec.name, chal.version)
        if state.phase == "approval" or champ is None:
            obs = ro.Observation(now, approval, None)
            return ro.advance(state, spec.deployment, obs), None
        samples = gather(
            spec,
            world.project.predictions_dir,
            world.bars(now),
            state.phase_started_at,
            now,
            champ.version,
            chal.version,
            self._requests(chal.version, state),
        )
        obs, verdict = observe(spec, state, samples, now, approval)
        return ro.advance(state, spec.deployment, obs), verdict.to_dict() if verdict else None

    def _requests(
        self, version: str, state: ro.RolloutState
    ) -> dict[str, tuple[float, float]] | None:
        """(errors, total) per variant since this phase was first judged here."""
        if self.requests is None:
            return None
        return self.requests.take((version, state.phase, state.step, state.phase_started_at))

    @staticmethod
    def _event(old: ro.RolloutState, new: ro.RolloutState) -> str:
        if new.phase != old.phase or new.step != old.step:  # a live phase: its strategy names it
            owner = strategy_for_phase(new.phase)
            return owner.event if owner is not None else new.phase
        return "extend" if new.extensions != old.extensions else "analysis"

    # ------------------------------------------------------------------ decisions' effects

    def _promote(
        self,
        ctx: Context,
        world: World,
        spec: Spec,
        champ: ModelVersion | None,
        chal: ModelVersion,
        state: ro.RolloutState,
    ) -> Result:
        from tradeloop.gitops.promotion import propose_or_apply

        name, d = spec.name, spec.deployment
        crash_point("deployer_before_git")
        change = propose_or_apply(
            world.repo,
            d.git,
            name,
            chal.version,
            state.reason,
            previous=champ.version if champ else None,
            clock=ctx.clock,
            details=_authors(world, name, chal),
        )
        if change.kind == "proposal":
            # wait for the merge; the challenger keeps scoring in shadow meanwhile
            if champ is not None:
                apply_traffic(
                    world,
                    name,
                    ro.Traffic(
                        (
                            ("champion", champ.version, "live", 100),
                            ("challenger", chal.version, "shadow", 0),
                        )
                    ),
                    "awaiting merge",
                )
            if change.created:
                ctx.emit("proposal", version=chal.version, reason=f"branch {change.branch}")
            return Result(message=f"v{chal.version}: awaiting merge of {change.branch}")
        crash_point("deployer_after_git")
        promote_version(
            world.store, world.registry, name, chal.version, actor="deployer", reason=state.reason
        )
        crash_point("deployer_after_alias")
        apply_traffic(
            world,
            name,
            ro.Traffic((("champion", chal.version, "live", 100),)),
            f"promoted v{chal.version}",
        )
        done = replace(state, phase="promoted")
        save_rollout(world, name, done, d.strategy, None, new=False)
        ctx.emit(
            "promote",
            version=chal.version,
            reason=state.reason,
            previous=champ.version if champ else None,
            commit=change.sha,
        )
        return Result(message=f"v{chal.version} promoted")

    def _rollback(
        self,
        ctx: Context,
        world: World,
        spec: Spec,
        champ: ModelVersion | None,
        chal: ModelVersion,
        state: ro.RolloutState,
    ) -> Result:
        from tradeloop.gitops.promotion import record_rollback

        name, d = spec.name, spec.deployment
        if champ is not None:
            apply_traffic(
                world,
                name,
                ro.Traffic((("champion", champ.version, "live", 100),)),
                f"rollback v{chal.version}",
            )
        world.registry.set_tag(name, chal.version, STATUS_TAG, "rejected")
        world.registry.set_tag(name, chal.version, "tradeloop.reason", state.reason[:500])
        change = record_rollback(
            world.repo,
            d.git,
            name,
            chal.version,
            champ.version if champ else None,
            state.reason,
            ctx.clock,
        )
        world.registry.delete_alias(name, CHALLENGER)
        done = replace(state, phase="rolled_back")
        save_rollout(world, name, done, d.strategy, None, new=False)
        ctx.emit("rollback", version=chal.version, reason=state.reason, commit=change.sha)
        return Result(message=f"v{chal.version} rolled back")


def _authors(world: World, name: str, chal: ModelVersion) -> dict[str, str]:
    """The people behind a pin change, in its commit message: who asked for the training,
    who registered the version, who approved it (the deployer only carries out their acts)."""
    from tradeloop.security.approvals import approvers_of

    doc = {
        "triggered by": chal.tags.get("triggered_by", ""),
        "registered by": chal.tags.get("registered_by", ""),
        "approved by": ", ".join(approvers_of(world.store, name, chal.version)),
    }
    return {k: v for k, v in doc.items() if v}
