"""Models for the gateway from the MLflow registry: ONNX bytes, feature order, expected sha256.

The bytes are what the registry stores; the gateway's runtime checks them against the version's
`onnx_sha256` tag before loading, so a tampered artifact is refused while the old model serves.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.applications import Starlette

from tradeloop.errors import NotFound
from tradeloop.project import Project
from tradeloop.registry.mlflow_registry import ONNX_FILE, Registry
from tradeloop.serving.anomaly import PROFILE_FILE, read_profile
from tradeloop.serving.source import ModelArtifact

log = logging.getLogger(__name__)


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
            self._profile(v.run_id),
        )

    def _profile(self, run_id: str | None) -> dict[str, Any] | None:
        """The training reference profile, for the input checks (None: no checks)."""
        if not run_id:
            return None
        try:
            return read_profile(self.registry.run_artifact(run_id, PROFILE_FILE))
        except Exception:  # an MLflow error of any kind: serve the model unchecked
            log.warning("no reference profile for run %s: inputs go unchecked", run_id)
            return None


def project_app(project: Project, registry: Registry, /, **overrides: Any) -> Starlette:
    """The gateway for a project's pipeline, models from its registry, state in its folder."""
    from tradeloop.serving.server import build_app

    spec = project.spec
    serving = spec.deployment.serving
    if serving.symbols is None and spec.data.source == "simulator":
        # the pipeline's universe is known: /v1/bars takes those symbols only
        serving = serving.model_copy(update={"symbols": list(spec.data.simulator.symbols)})
    options: dict[str, Any] = {
        "state_dir": project.pipeline_dir,
        "predictions_dir": project.predictions_dir,
        "clock": project.clock,
        "serving": serving,
        "backtest": spec.backtest,
        "task": spec.model.task,
        "features": list(spec.features),
        "sticky_units": spec.sticky_units,
        **overrides,
    }
    return build_app(project.store, spec.name, RegistrySource(registry), **options)
