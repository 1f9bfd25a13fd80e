"""What the controllers act on: the project's stores, the registry, git, and the market so far.

Controllers get one `World` through the reconcile context; it holds no state of its own beyond
handles, so a restarted process builds an identical one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from tradeloop.clock import Clock
from tradeloop.control.reconciler import TerminalError
from tradeloop.data.barstore import BarStore
from tradeloop.data.source import checked_bars
from tradeloop.errors import BadInput
from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import Registry
from tradeloop.spec import Spec
from tradeloop.store import Store

if TYPE_CHECKING:
    from tradeloop.gitops.desired import DesiredState
    from tradeloop.gitops.repo import GitRepo
from tradeloop.training.dataset import bars_as_of


@dataclass
class World:
    project: Project
    registry: Registry
    _bars: pl.DataFrame | None = field(default=None, repr=False)
    _bars_stamp: tuple[int, int] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, project: Project) -> World:
        return cls(project, Registry.for_project(project))

    @property
    def clock(self) -> Clock:
        return self.project.clock

    @property
    def store(self) -> Store:
        return self.project.store

    @property
    def repo(self) -> Path:
        return self.project.root

    @property
    def name(self) -> str:
        return self.project.spec.name

    def desired(self) -> DesiredState:
        """The spec and production pin at the head of the tracked branch (not the work tree).

        Parsed once per commit: a controller loop re-reads only when the branch moved. A spec
        or pin in git that does not validate is a TerminalError: retrying cannot fix it, a
        commit can.
        """
        from tradeloop.gitops.desired import PinError, read_desired
        from tradeloop.gitops.remote import pull

        git = self.project.spec.deployment.git
        repo = self.git_repo()
        pull(repo, git.branch)  # TRADELOOP_GIT_REMOTE: the shared remote's branch is the truth
        head = repo.head(f"refs/heads/{git.branch}")
        cached: DesiredState | None = self.__dict__.get("_desired")
        if cached is not None and head is not None and cached.spec_sha == head:
            return cached
        try:
            state = read_desired(
                self.repo,
                git.branch,
                git.pin_file,
                repo=repo,
                spec_file=self.project.spec_relpath,
            )
        except PinError as exc:
            raise TerminalError(f"the pin in git is invalid: {exc}", "bad_pin") from exc
        except BadInput as exc:  # the spec does not validate, or the branch is missing
            raise TerminalError(
                f"the desired state in git is invalid: {exc}", "invalid_spec"
            ) from exc
        self.__dict__["_desired"] = state
        return state

    def desired_head(self) -> str | None:
        """The tracked branch's head: what a parked controller waits to see change."""
        from tradeloop.gitops.remote import pull

        git = self.project.spec.deployment.git
        repo = self.git_repo()
        pull(repo, git.branch)
        return repo.head(f"refs/heads/{git.branch}")

    def git_repo(self) -> GitRepo:
        """The project's repository, opened once (opening runs git to find its root)."""
        from tradeloop.gitops.repo import GitRepo

        repo: GitRepo | None = self.__dict__.get("_repo")
        if repo is None:
            repo = GitRepo(self.repo)
            self.__dict__["_repo"] = repo
        return repo

    def project_for(self, spec: Spec) -> Project:
        """The same project (paths, stores, clock) under the spec git says is desired."""
        return self.project.sibling(spec, self.project.spec_path)

    def bars(self, as_of: datetime | None = None) -> pl.DataFrame:
        """Validated bars that exist at `as_of` (the clock's now by default): never the future."""
        live = self.project.live_bars_dir if self.project.spec.data.stream else None
        stamp = BarStore(live).stamp() if live is not None else None
        if self._bars is None or stamp != self._bars_stamp:  # the stream persisted new bars
            self._bars_stamp = stamp
            self._bars, _ = checked_bars(
                self.project.spec.data, self.project.root, self.project.live_bars_dir
            )
        return bars_as_of(self._bars, as_of or self.clock.now())
