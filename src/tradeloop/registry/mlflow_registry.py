"""The model registry on MLflow: one registered model per pipeline, lineage in version tags.

A version is *complete* only once it carries the tag `tradeloop.complete=true`, which is the
last thing registration writes (after every lineage tag and the `challenger` alias). Code that
reads the registry sees complete versions only, and `cleanup_incomplete` deletes the remains of
a registration that was killed half-way, so nothing half-made can be served or promoted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeloop.errors import IntegrityError, NotFound, RuntimeFailure
from tradeloop.faults import crash_point

COMPLETE_TAG = "tradeloop.complete"
STATUS_TAG = "tradeloop.status"  # "rejected" once a rollout rejects it
CHAMPION = "champion"
CHALLENGER = "challenger"
ONNX_FILE = "model.onnx"

# Lineage tags every complete version carries.
REQUIRED_TAGS = (
    "dataset_hash",
    "onnx_sha256",
    "spec_hash",
    "code_revision",
    "features",
    "gates_passed",
)


def quiet_mlflow() -> None:
    """MLflow logs migrations and emits warnings on every start; keep the CLI's output ours."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    for name in ("mlflow", "alembic", "mlflow.store", "mlflow.tracking"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    run_id: str | None
    source: str
    tags: dict[str, str]
    aliases: list[str] = field(default_factory=list)
    created_ms: int = 0

    @property
    def complete(self) -> bool:
        return self.tags.get(COMPLETE_TAG) == "true"

    @property
    def rejected(self) -> bool:
        return self.tags.get(STATUS_TAG) == "rejected"

    @property
    def features(self) -> list[str]:
        return list(json.loads(self.tags.get("features", "[]")))

    def metric(self, key: str) -> float | None:
        v = self.tags.get(f"metric.{key}")
        return float(v) if v is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "source": self.source,
            "aliases": self.aliases,
            "created_ms": self.created_ms,
            "rejected": self.rejected,
            "tags": dict(sorted(self.tags.items())),
        }


class Registry:
    """MLflow's registry seen through tradeloop's rules (complete versions, aliases, sha256)."""

    def __init__(self, tracking_uri: str, artifact_root: str | None = None) -> None:
        quiet_mlflow()
        import mlflow
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        # MLflow exports the URI into os.environ; put back the user's own, or the next
        # project opened in this process would silently use this one's tracking store.
        before = os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    # ------------------------------------------------------------------------ experiments

    def experiment_id(self, pipeline: str) -> str:
        name = f"tradeloop/{pipeline}"
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        location = None
        if self.artifact_root:
            Path(self.artifact_root).mkdir(parents=True, exist_ok=True)
            location = Path(self.artifact_root).resolve().as_uri()
        return str(self.client.create_experiment(name, artifact_location=location))

    # --------------------------------------------------------------------------- versions

    def _wrap(self, mv: Any) -> ModelVersion:
        return ModelVersion(
            name=mv.name,
            version=str(mv.version),
            run_id=mv.run_id,
            source=mv.source,
            tags=dict(mv.tags or {}),
            aliases=list(getattr(mv, "aliases", []) or []),
            created_ms=int(mv.creation_timestamp or 0),
        )

    def _all(self, name: str) -> list[ModelVersion]:
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(f"name='{name}'")
            aliases = dict(self.client.get_registered_model(name).aliases or {})
        except MlflowException:
            return []
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        out = []
        for v in found:
            mv = self._wrap(v)
            out.append(
                ModelVersion(
                    mv.name,
                    mv.version,
                    mv.run_id,
                    mv.source,
                    mv.tags,
                    sorted(by_version.get(mv.version, [])),
                    mv.created_ms,
                )
            )
        return sorted(out, key=lambda v: int(v.version))

    def versions(self, name: str, *, include_incomplete: bool = False) -> list[ModelVersion]:
        return [v for v in self._all(name) if include_incomplete or v.complete]

    def get(self, name: str, version: str) -> ModelVersion:
        from mlflow.exceptions import MlflowException

        try:
            v = self._wrap(self.client.get_model_version(name, str(version)))
        except MlflowException as exc:
            raise NotFound(f"model {name!r} has no version {version!r}") from exc
        if not v.complete:
            raise NotFound(f"model {name!r} version {version} is incomplete (registration died)")
        return v

    def by_alias(self, name: str, alias: str) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        try:
            v = self._wrap(self.client.get_model_version_by_alias(name, alias))
        except MlflowException:
            return None
        return v if v.complete else None

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.get(name, version)  # complete versions only
        self.client.set_registered_model_alias(name, alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        from mlflow.exceptions import MlflowException

        with contextlib.suppress(MlflowException):
            self.client.delete_registered_model_alias(name, alias)

    def set_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.client.set_model_version_tag(name, str(version), key, value)

    def cleanup_incomplete(self, name: str) -> list[str]:
        """Delete versions whose registration never finished. Call while holding the
        training lease, so no registration is in flight."""
        removed = []
        for v in self._all(name):
            if not v.complete:
                self.client.delete_model_version(name, v.version)
                removed.append(v.version)
        return removed

    def register(
        self, name: str, model_uri: str, run_id: str, tags: dict[str, str], alias: str | None
    ) -> ModelVersion:
        """Create a version with every lineage tag, set the alias, then mark it complete."""
        from mlflow.exceptions import MlflowException

        missing = [t for t in REQUIRED_TAGS if t not in tags]
        if missing:
            raise RuntimeFailure(f"refusing to register without lineage tags: {missing}")
        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(
                name, description=f"tradeloop pipeline {name}", tags={"tradeloop": "true"}
            )
        mv = self.client.create_model_version(name, model_uri, run_id=run_id, tags=tags)
        version = str(mv.version)
        crash_point("version_created")
        if alias:
            self.client.set_registered_model_alias(name, alias, version)
        crash_point("alias_set")
        self.client.set_model_version_tag(name, version, COMPLETE_TAG, "true")
        return self.get(name, version)

    # ------------------------------------------------------------------------- artifacts

    def model_dir(self, version: ModelVersion) -> Path:
        import mlflow

        local = mlflow.artifacts.download_artifacts(artifact_uri=version.source)
        return Path(local)

    def fetch_onnx(self, name: str, version: str) -> tuple[bytes, ModelVersion]:
        """The version's ONNX bytes, refused unless their sha256 equals the `onnx_sha256` tag."""
        v = self.get(name, version)
        path = self.model_dir(v) / ONNX_FILE
        if not path.exists():
            raise NotFound(f"{name} v{version}: no {ONNX_FILE} in {v.source}")
        data = path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != v.tags.get("onnx_sha256"):
            raise IntegrityError(
                f"{name} v{version}: {ONNX_FILE} sha256 {actual[:12]}… does not match the "
                f"registered onnx_sha256 {v.tags.get('onnx_sha256', '?')[:12]}…; refusing it"
            )
        return data, v

    def run_artifact(self, run_id: str, path: str) -> Path:
        import mlflow

        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path))
