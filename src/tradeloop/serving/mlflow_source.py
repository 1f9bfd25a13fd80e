"""Models for the gateway from the MLflow registry: ONNX bytes, feature order, expected sha256.

The bytes are what the registry stores; the gateway's runtime checks them against the version's
`onnx_sha256` tag before loading, so a tampered artifact is refused while the old model serves.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette

from tradeloop.errors import NotFound
from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import ONNX_FILE, Registry
from tradeloop.serving.source import ModelArtifact


class RegistrySource:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def fetch(self, model_name: str, version: str) -> ModelArtifact:
        v = self.registry.get(model_name, version)
        path = self.registry.model_dir(v) / ONNX_FILE
        if not path.exists():
            raise NotFound(f"{model_name} v{version}: no {ONNX_FILE} in {v.source}")
        expected = v.tags.get("onnx_sha256", "")
        return ModelArtifact(
            model_name,
            str(version),
            path.read_bytes(),
            list(json.loads(v.tags["features"])),
            expected,
        )


def project_app(project: Project, registry: Registry, **overrides: Any) -> Starlette:
    """The gateway for a project's pipeline, models from its registry, state in its folder."""
    from tradeloop.serving.server import build_app

    spec = project.spec
    options: dict[str, Any] = {
        "state_dir": project.state_dir,
        "clock": project.clock,
        "serving": spec.deployment.serving,
        "backtest": spec.backtest,
        "task": spec.model.task,
        "features": list(spec.features),
        "sticky_units": spec.sticky_units,
        **overrides,
    }
    return build_app(project.store, spec.name, RegistrySource(registry), **options)
