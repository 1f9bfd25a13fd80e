"""What a killed training leaves in MLflow, found and cleaned by the next holder of its lease.

A SIGKILLed training never reaches `set_terminated`, so its run stayed RUNNING forever, and the
ONNX model it had logged stayed in the artifact folder with nothing pointing at it. Training
runs carry the tag `tradeloop.holder` (their lease holder): while we hold the training lease,
any other holder's RUNNING run (and its tuning children) is dead. Those runs are marked FAILED,
and their logged models that no version was registered from are deleted with their files.
Half-registered versions are deleted as before (`Registry.cleanup_incomplete`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from tradeloop.registry.mlflow_registry import Registry

HOLDER_TAG = "tradeloop.holder"
PARENT_TAG = "mlflow.parentRunId"


@dataclass
class Cleanup:
    failed_runs: list[str] = field(default_factory=list)
    removed_models: list[str] = field(default_factory=list)
    removed_versions: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.failed_runs or self.removed_models or self.removed_versions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "failed_runs": self.failed_runs,
            "removed_models": self.removed_models,
            "removed_versions": self.removed_versions,
        }


def _all_runs(registry: Registry, experiment: str, status: str) -> list[Any]:
    runs: list[Any] = []
    token = None
    while True:
        page = registry.client.search_runs(
            [experiment], f"attributes.status = '{status}'", max_results=1000, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def crashed_runs(registry: Registry, pipeline: str, holder: str) -> list[str]:
    """RUNNING training runs of holders other than `holder` (the lease holder), with children."""
    experiment = registry.experiment_id(pipeline)
    running = _all_runs(registry, experiment, "RUNNING")
    dead = {
        r.info.run_id
        for r in running
        if HOLDER_TAG in r.data.tags and r.data.tags[HOLDER_TAG] != holder
    }
    children = {r.info.run_id for r in running if r.data.tags.get(PARENT_TAG) in dead}
    return sorted(dead | children)


def _local_dir(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and uri:
        return Path(uri)
    return None  # object storage: MLflow's delete marks it; its files are the store's to expire


def _orphaned_models(registry: Registry, pipeline: str, runs: set[str]) -> list[Any]:
    if not runs:
        return []
    experiment = registry.experiment_id(pipeline)
    used = {v.source for v in registry.versions(pipeline, include_incomplete=True)}
    models: list[Any] = []
    token = None
    while True:
        page = registry.client.search_logged_models([experiment], page_token=token)
        models.extend(page)
        token = page.token
        if not token:
            break
    return [m for m in models if m.source_run_id in runs and m.artifact_location not in used]


def collect_crashed(registry: Registry, pipeline: str, holder: str) -> Cleanup:
    """Mark dead training runs FAILED and delete what only they used. Hold the training lease."""
    done = Cleanup()
    done.removed_versions = registry.cleanup_incomplete(pipeline)
    runs = crashed_runs(registry, pipeline, holder)
    for run_id in runs:
        registry.client.set_terminated(run_id, "FAILED")
        done.failed_runs.append(run_id)
    for model in _orphaned_models(registry, pipeline, set(runs)):
        folder = _local_dir(str(model.artifact_location))
        registry.client.delete_logged_model(model.model_id)
        if folder is not None and folder.exists():
            shutil.rmtree(folder)
            if folder.parent.name == model.model_id and not any(folder.parent.iterdir()):
                folder.parent.rmdir()  # MLflow's models/<id>/artifacts layout
        done.removed_models.append(str(model.model_id))
    return done
