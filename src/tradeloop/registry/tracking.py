"""Runs in MLflow's tracking store, through the injected client only.

MLflow's fluent API (`mlflow.start_run`, `mlflow.log_*`, `mlflow.onnx.log_model`) keeps the
active run and the tracking URI in process-global state, so two projects opened in one process
would write into each other's store. Everything here goes through one `MlflowClient`, so each
`Registry` sees its own store only. What the fluent calls recorded (context tags such as
`mlflow.user`, the run's status, the dataset input, the logged model as a run output) is
recorded here too.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

MODEL_NAME = "model"  # the logged model's name, as `mlflow.onnx.log_model(name="model")` gave


def quiet_mlflow() -> None:
    """MLflow logs migrations and emits warnings on every start; keep the CLI's output ours."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    for name in ("mlflow", "alembic", "mlflow.store", "mlflow.tracking"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="mlflow")


@dataclass(frozen=True)
class LoggedOnnx:
    """An ONNX model logged against a run: `model_uri` is what a version is registered from."""

    model_id: str
    model_uri: str


def _context_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags MLflow adds to a run it starts itself (user, source, git commit)."""
    from mlflow.tracking.context import registry as context_registry

    return dict(context_registry.resolve_tags(dict(tags)))


class TrackedRun:
    """One open run; every write names its run id, so nothing depends on an active run."""

    def __init__(self, client: MlflowClient, experiment_id: str, run_id: str) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.run_id = run_id

    def log_params(self, params: Mapping[str, object]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        rows = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        if rows:
            self.client.log_batch(self.run_id, metrics=rows)

    def log_dataset(self, path: str, *, name: str, digest: str, context: str) -> None:
        """Record the snapshot the run read, as `mlflow.log_input` of a MetaDataset did."""
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        # MetaDataset declares `profile` abstract yet is MLflow's own concrete metadata-only
        # dataset (mlflow.data.meta_dataset): instantiating it is its documented use.
        dataset = MetaDataset(resolve_dataset_source(path), name=name, digest=digest)  # type: ignore[abstract]
        entry = DatasetInput(
            dataset=dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)]
        )
        self.client.log_inputs(self.run_id, datasets=[entry])

    def log_artifacts(self, local_dir: Path) -> None:
        self.client.log_artifacts(self.run_id, str(local_dir))

    def log_artifact(self, local_path: Path) -> None:
        self.client.log_artifact(self.run_id, str(local_path))

    def log_onnx_model(
        self, onnx_bytes: bytes, features: list[str], pip_requirements: list[str]
    ) -> LoggedOnnx:
        """Log an MLflow `onnx`-flavour model as a LoggedModel of this run.

        The same steps `mlflow.onnx.log_model` takes, without its active run: create the
        LoggedModel (carrying the run's params), link it as a run output, save the flavour to a
        temporary folder, upload it, link the run's metrics, and mark the model READY (FAILED if
        anything broke). `mlflow models serve -m models:/NAME/VERSION` serves the result.
        """
        import mlflow.onnx
        import onnx
        from mlflow.entities import LoggedModelOutput, LoggedModelStatus
        from mlflow.models import Model
        from mlflow.models.signature import ModelSignature
        from mlflow.types.schema import ColSpec, Schema

        run = self.client.get_run(self.run_id)
        model = self.client.create_logged_model(
            self.experiment_id,
            name=MODEL_NAME,
            source_run_id=self.run_id,
            tags=_context_tags({}),
            params={k: str(v) for k, v in run.data.params.items()},
        )
        try:
            self.client.log_outputs(self.run_id, [LoggedModelOutput(model.model_id, step=0)])
            self._link_metrics(model.model_id)
            signature = ModelSignature(
                inputs=Schema([ColSpec("float", f) for f in features]),
                outputs=Schema([ColSpec("float", "prediction")]),
            )
            flavour = Model(
                artifact_path=model.artifact_location,
                model_uuid=model.model_id,
                run_id=self.run_id,
                model_id=model.model_id,
            )
            with tempfile.TemporaryDirectory() as tmp:
                local = Path(tmp) / "model"
                mlflow.onnx.save_model(
                    onnx.load_from_string(onnx_bytes),
                    str(local),
                    mlflow_model=flavour,
                    signature=signature,
                    save_as_external_data=False,
                    pip_requirements=pip_requirements,
                )
                self.client.log_model_artifacts(model.model_id, str(local))
        except BaseException:
            self.client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
            raise
        self.client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
        return LoggedOnnx(model.model_id, f"models:/{model.model_id}")

    def _link_metrics(self, model_id: str) -> None:
        """Attach the run's step-0 metrics to the model, as `Model.log` does."""
        from mlflow.entities import Metric

        linked = [
            Metric(
                m.key,
                m.value,
                m.timestamp,
                m.step,
                dataset_name=m.dataset_name,
                dataset_digest=m.dataset_digest,
                run_id=m.run_id,
                model_id=model_id,
            )
            for key in self.client.get_run(self.run_id).data.metrics
            for m in self.client.get_metric_history(self.run_id, key)
            if m.step == 0 and m.model_id is None
        ]
        if linked:
            self.client.log_batch(self.run_id, metrics=linked)


@contextmanager
def open_run(
    client: MlflowClient,
    experiment_id: str,
    run_name: str,
    tags: Mapping[str, str],
    *,
    parent_run_id: str | None = None,
) -> Iterator[TrackedRun]:
    """A run that ends FINISHED, or FAILED if the block raises (as `mlflow.start_run` did)."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

    wanted = dict(tags)
    if parent_run_id is not None:
        wanted[MLFLOW_PARENT_RUN_ID] = parent_run_id
    wanted[MLFLOW_RUN_NAME] = run_name
    run = client.create_run(experiment_id, tags=_context_tags(wanted), run_name=run_name)
    tracked = TrackedRun(client, experiment_id, run.info.run_id)
    try:
        yield tracked
    except BaseException:
        client.set_terminated(tracked.run_id, "FAILED")
        raise
    client.set_terminated(tracked.run_id, "FINISHED")


def serving_requirements() -> list[str]:
    """Pinned requirements of a logged model, named rather than inferred (inferring costs ~15 s)."""
    from importlib.metadata import version

    return [
        f"{pkg}=={version(pkg)}" for pkg in ("mlflow", "onnx", "onnxruntime", "numpy", "pandas")
    ]
