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
from tradeloop.spec import LoadedSpec, Spec, load_spec

if TYPE_CHECKING:
    from tradeloop.store import Store


@dataclass
class Project:
    spec: Spec
    spec_path: Path
    clock: Clock = field(default_factory=WallClock)
    _store: Store | None = None

    @classmethod
    def load(cls, spec_path: str | Path | None = None, clock: Clock | None = None) -> Project:
        loaded: LoadedSpec = load_spec(spec_path)
        return cls(loaded.spec, loaded.path, clock or WallClock())

    @property
    def root(self) -> Path:
        return self.spec_path.parent

    @property
    def state_dir(self) -> Path:
        home = os.environ.get("TRADELOOP_HOME")
        d = Path(home).resolve() if home else self.root / ".tradeloop"
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def snapshots_dir(self) -> Path:
        return self.state_dir / "snapshots"

    @property
    def live_bars_dir(self) -> Path:
        """Bars persisted from `data.stream` by `tradeloop ingest` (`stream.barstore`)."""
        return self.state_dir / "bars"

    @property
    def predictions_dir(self) -> Path:
        """The prediction log: `TRADELOOP_PREDICTIONS_DIR` (a folder every gateway replica writes
        its own files into and the controllers read together), else `<state>/predictions`."""
        shared = os.environ.get("TRADELOOP_PREDICTIONS_DIR")
        return Path(shared).resolve() if shared else self.state_dir / "predictions"

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
