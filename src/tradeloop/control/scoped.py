"""One controller for one pipeline of a project that holds many.

The trainer, deployer and monitor act on one pipeline's `World` (ctx.extras["world"]). One
control plane reconciles every pipeline of a project, so each pipeline gets its own instances,
named `<kind>:<pipeline>`: the name keys the leader lease, the run records, the events and the
metrics, so two pipelines never share a lease or a timeline. A root `tradeloop.yaml` keeps the
plain names (`trainer`), as a one-pipeline project always had.

The world is made on first use. A pipeline whose spec does not validate therefore still has
controllers: each run tries to read what git holds for its file and, while that does not
validate, parks with the file, the line and the reason, without touching the other pipelines.
A fix committed to git un-parks it (the manager watches the branch head) and the same
controllers carry on with the spec git now holds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from tradeloop.control.names import MAX_PIPELINE_NAME, controller_name
from tradeloop.control.reconciler import Context, Reconciler, Result, TerminalError
from tradeloop.control.world import World
from tradeloop.errors import BadInput
from tradeloop.project import Project
from tradeloop.spec.catalog import Broken

__all__ = ["MAX_PIPELINE_NAME", "ScopedController", "broken_world", "controller_name"]


class ScopedController:
    """`inner`, run under `name` against the world `make_world` returns (made once)."""

    def __init__(self, inner: Reconciler, name: str, make_world: Callable[[], World]) -> None:
        if len(name) > 64:
            raise BadInput(
                f"controller {name!r} is longer than 64 characters: shorten the pipeline name "
                f"to at most {MAX_PIPELINE_NAME}"
            )
        self.inner = inner
        self.name = name
        self.interval: timedelta = inner.interval
        self._make_world = make_world
        self._world: World | None = None

    @property
    def world(self) -> World | None:
        return self._world

    def reconcile(self, ctx: Context) -> Result:
        if self._world is None:
            self._world = self._make_world()
        ctx.extras["world"] = self._world
        with self._world.registry.reading():  # one registry read per model per run
            return self.inner.reconcile(ctx)

    def close(self) -> None:
        close: Any = getattr(self.inner, "close", None)
        if close is not None:
            close()


def broken_world(sibling: Project, broken: Broken) -> Callable[[], World]:
    """A world for a pipeline whose working-tree spec does not validate: made from what git
    holds for its file, or a TerminalError naming the file, the line and why."""

    def make() -> World:
        from tradeloop.gitops.desired import read_desired

        git = sibling.spec.deployment.git
        try:
            state = read_desired(sibling.root, git.branch, spec_file=broken.relpath)
        except BadInput as exc:
            raise TerminalError(
                f"pipeline {broken.name!r} ({broken.relpath}) does not validate: {exc}",
                "invalid_spec",
            ) from exc
        return World.open(sibling.sibling(state.spec, broken.path))

    return make
