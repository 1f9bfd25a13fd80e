"""A project: the spec, where its state lives, and the stores it opens.

State defaults to `.tradeloop/` beside the spec (`TRADELOOP_HOME` overrides); the operational
database to SQLite in it (`TRADELOOP_DB_URL` overrides); the prediction log to `predictions/` in
it (`TRADELOOP_PREDICTIONS_DIR` overrides, for replicas sharing one folder); MLflow to a SQLite file and artifact
folder in it (`MLFLOW_TRACKING_URI` overrides).

The store is imported when first opened, so commands that never touch the database (`validate`)
don't pay for SQLAlchemy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tradeloop.clock import Clock, WallClock
from tradeloop.spec import LoadedSpec, Spec
from tradeloop.spec.catalog import is_pipeline_file, project_root

if TYPE_CHECKING:
    from tradeloop.store import Store


@dataclass
class Project:
    spec: Spec
    spec_path: Path
    clock: Clock = field(default_factory=WallClock)
    _store: Store | None = None

    @classmethod
    def load(
        cls,
        spec_path: str | Path | None = None,
        clock: Clock | None = None,
        pipeline: str | None = None,
    ) -> Project:
        """One pipeline of the project at `spec_path` (a spec file or a project folder; see
        `spec.catalog`); `pipeline` picks one when the folder holds several."""
        from tradeloop.spec.catalog import load_pipeline

        loaded: LoadedSpec = load_pipeline(spec_path, pipeline)
        return cls(loaded.spec, loaded.path, clock or WallClock())

    @property
    def root(self) -> Path:
        """The project folder: where relative paths start and git is opened."""
        return project_root(self.spec_path)

    @property
    def spec_relpath(self) -> str:
        """The spec file's path from the project folder (`tradeloop.yaml`, `pipelines/x.yaml`)."""
        return self.spec_path.relative_to(self.root).as_posix()

    @property
    def in_pipelines_dir(self) -> bool:
        return is_pipeline_file(self.spec_relpath)

    def sibling(self, spec: Spec, spec_path: Path) -> Project:
        """Another pipeline of this project, sharing its stores and clock."""
        p = Project(spec, spec_path, self.clock)
        p._store = self.store
        return p

    @property
    def state_dir(self) -> Path:
        home = os.environ.get("TRADELOOP_HOME")
        d = Path(home).resolve() if home else self.root / ".tradeloop"
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def pipeline_dir(self) -> Path:
        """This pipeline's own state: the state folder itself for a root `tradeloop.yaml`,
        `<state>/pipelines/<name>/` for a pipeline under `pipelines/` (the database, MLflow
        and credentials stay shared in the state folder)."""
        if not self.in_pipelines_dir:
            return self.state_dir
        d = self.state_dir / "pipelines" / self.spec.name
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def snapshots_dir(self) -> Path:
        return self.pipeline_dir / "snapshots"

    @property
    def live_bars_dir(self) -> Path:
        """Bars persisted from `data.stream` by `tradeloop ingest` (`stream.barstore`)."""
        return self.pipeline_dir / "bars"

    @property
    def predictions_dir(self) -> Path:
        """The prediction log: `TRADELOOP_PREDICTIONS_DIR` (a folder every gateway replica writes
        its own files into and the controllers read together), else the pipeline's state folder;
        a pipeline under `pipelines/` keeps a subfolder of its own in either."""
        shared = os.environ.get("TRADELOOP_PREDICTIONS_DIR")
        if not shared:
            return self.pipeline_dir / "predictions"
        base = Path(shared).resolve()
        return base / self.spec.name if self.in_pipelines_dir else base

    @property
    def db_url(self) -> str:
        return os.environ.get("TRADELOOP_DB_URL") or f"sqlite:///{self.state_dir / 'tradeloop.db'}"

    @property
    def mlflow_uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.state_dir / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> str:
        """Where new experiments keep artifacts: TRADELOOP_ARTIFACT_ROOT (a URI such as
        `mlflow-artifacts:/tradeloop` for a proxying MLflow server, or `s3://…`), else local."""
        return os.environ.get("TRADELOOP_ARTIFACT_ROOT") or str(self.state_dir / "mlartifacts")

    @property
    def store(self) -> Store:
        if self._store is None:
            from tradeloop.store import Store

            self._store = Store.open(self.db_url, self.clock)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
