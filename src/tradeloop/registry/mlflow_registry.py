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
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradeloop.errors import HashMismatch, NotFound, RuntimeFailure
from tradeloop.faults import crash_point
from tradeloop.registry.tracking import TrackedRun, open_run, quiet_mlflow

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from tradeloop.project import Project

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


# Writes made to a registry through any Registry in this process: a `reading()` block reuses
# what it read only while this is unchanged (a one-element list, so it is shared and mutable).
_WRITES = [0]


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
    """MLflow's registry seen through tradeloop's rules (complete versions, aliases, sha256).

    Takes its `MlflowClient` rather than a URI, and never touches MLflow's process-global
    tracking state, so two projects in one process keep separate stores.
    """

    def __init__(self, client: MlflowClient, artifact_root: str | None = None) -> None:
        self.client = client
        self.artifact_root = artifact_root
        self._local = threading.local()  # a reading() block belongs to one thread

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Within this block, a model's versions and aliases are read once and reused until
        a write through any Registry of this process: one reconcile asks for the champion,
        the challenger and the versions (each an MLflow round trip of ~10 ms, a dozen SQL
        statements), and this makes them one. Outside it, every read goes to MLflow."""
        local = self._local
        local.depth = getattr(local, "depth", 0) + 1
        if local.depth == 1:
            local.seen = {}
        try:
            yield
        finally:
            local.depth -= 1
            if not local.depth:
                local.seen = None

    def _cache(self) -> dict[str, tuple[int, list[ModelVersion]]] | None:
        seen: dict[str, tuple[int, list[ModelVersion]]] | None = getattr(self._local, "seen", None)
        return seen

    def _written(self) -> None:
        _WRITES[0] += 1

    @classmethod
    def open(cls, tracking_uri: str, artifact_root: str | None = None) -> Registry:
        """A registry on its own client; the store is both tracking and model registry."""
        quiet_mlflow()
        from mlflow import MlflowClient

        from tradeloop.registry.mlflow_store import ensure_mlflow_store

        ensure_mlflow_store(tracking_uri)

        return cls(
            MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri), artifact_root
        )

    @classmethod
    def for_project(cls, project: Project) -> Registry:
        return cls.open(project.mlflow_uri, project.mlflow_artifacts)

    @property
    def tracking_uri(self) -> str:
        return str(self.client.tracking_uri)

    # ------------------------------------------------------------------------ experiments

    def experiment_id(self, pipeline: str) -> str:
        name = f"tradeloop/{pipeline}"
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        location = None
        scheme, uri, _ = (self.artifact_root or "").partition(":/")
        if uri and len(scheme) > 1 and scheme.replace("-", "").isalnum():
            location = self.artifact_root  # a URI (s3://, gs://, mlflow-artifacts:/): as given
        elif self.artifact_root:
            Path(self.artifact_root).mkdir(parents=True, exist_ok=True)
            location = Path(self.artifact_root).resolve().as_uri()
        return str(self.client.create_experiment(name, artifact_location=location))

    @contextlib.contextmanager
    def start_run(
        self,
        pipeline: str,
        run_name: str,
        tags: Mapping[str, str],
        *,
        parent_run_id: str | None = None,
    ) -> Iterator[TrackedRun]:
        """A run in the pipeline's experiment: FINISHED on success, FAILED if the block raises."""
        experiment = self.experiment_id(pipeline)
        with open_run(self.client, experiment, run_name, tags, parent_run_id=parent_run_id) as run:
            yield run

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
        seen = self._cache()
        if seen is None:
            return self._read_all(name)
        hit = seen.get(name)
        if hit is not None and hit[0] == _WRITES[0]:
            return list(hit[1])
        generation = _WRITES[0]  # taken before reading: a write meanwhile makes it stale
        found = self._read_all(name)
        seen[name] = (generation, found)
        return list(found)

    def _read_all(self, name: str) -> list[ModelVersion]:
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

        if self._cache() is not None:
            found = [v for v in self._all(name) if alias in v.aliases]
            return found[0] if found and found[0].complete else None
        try:
            v = self._wrap(self.client.get_model_version_by_alias(name, alias))
        except MlflowException:
            return None
        return v if v.complete else None

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.get(name, version)  # complete versions only
        self.client.set_registered_model_alias(name, alias, str(version))
        self._written()

    def delete_alias(self, name: str, alias: str) -> None:
        from mlflow.exceptions import MlflowException

        with contextlib.suppress(MlflowException):
            self.client.delete_registered_model_alias(name, alias)
        self._written()

    def set_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.client.set_model_version_tag(name, str(version), key, value)
        self._written()

    def cleanup_incomplete(self, name: str) -> list[str]:
        """Delete versions whose registration never finished. Call while holding the
        training lease, so no registration is in flight."""
        removed = []
        for v in self._all(name):
            if not v.complete:
                self.client.delete_model_version(name, v.version)
                self._written()
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
        source, model_id = self._storage_of(model_uri)
        mv = self.client.create_model_version(
            name, source, run_id=run_id, tags=tags, model_id=model_id
        )
        self._written()
        version = str(mv.version)
        crash_point("version_created")
        if alias:
            self.client.set_registered_model_alias(name, alias, version)
            self._written()
        crash_point("alias_set")
        self.client.set_model_version_tag(name, version, COMPLETE_TAG, "true")
        self._written()
        return self.get(name, version)

    def _storage_of(self, model_uri: str) -> tuple[str, str | None]:
        """A LoggedModel URI as its artifact location and id. MLflow's SQL registry would look
        a `models:/m-...` source up through its process-global tracking URI (its own TODO in
        `create_model_version`), so versions are registered from the location itself; serving
        `models:/NAME/VERSION` resolves to the same folder either way."""
        ref = model_uri.removeprefix("models:/")
        if model_uri.startswith("models:/m-") and "/" not in ref:
            return str(self.client.get_logged_model(ref).artifact_location), ref
        return model_uri, None

    # ------------------------------------------------------------------------- artifacts

    def model_dir(self, version: ModelVersion) -> Path:
        return self.model_dir_of(version.source)

    def model_dir_of(self, model_uri: str) -> Path:
        """The local folder of a logged model (`models:/m-...`), from this registry's store.

        MLflow resolves `models:/` and `runs:/` URIs through its process-global tracking URI,
        so they are resolved here through the client, down to a plain artifact location.
        """
        from mlflow.artifacts import download_artifacts

        uri = self.tracking_uri
        location, model_id = self._storage_of(model_uri)
        if model_id is not None:
            return Path(download_artifacts(artifact_uri=location, tracking_uri=uri))
        if model_uri.startswith("runs:/"):
            run_id, _, path = model_uri.removeprefix("runs:/").partition("/")
            return Path(self.client.download_artifacts(run_id, path))
        return Path(download_artifacts(artifact_uri=model_uri, tracking_uri=uri, registry_uri=uri))

    def fetch_onnx(self, name: str, version: str) -> tuple[bytes, ModelVersion]:
        """The version's ONNX bytes, refused unless their sha256 equals the `onnx_sha256` tag."""
        v = self.get(name, version)
        path = self.model_dir(v) / ONNX_FILE
        if not path.exists():
            raise NotFound(f"{name} v{version}: no {ONNX_FILE} in {v.source}")
        data = path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != v.tags.get("onnx_sha256"):
            raise HashMismatch(
                f"{name} v{version}: {ONNX_FILE} sha256 {actual[:12]}… does not match the "
                f"registered onnx_sha256 {v.tags.get('onnx_sha256', '?')[:12]}…; refusing it"
            )
        return data, v

    def run_artifact(self, run_id: str, path: str) -> Path:
        return Path(self.client.download_artifacts(run_id, path))
