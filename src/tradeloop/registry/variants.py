"""A version made from another: the same lineage and card, a different ONNX graph.

The demo uses this for its fault injection (a copy of the champion with its signal inverted,
registered as if it had passed its gates), so the rollout's live analysis is what must catch
it. It goes through the same registration as training: every lineage tag, the alias, then the
completion mark.
"""

from __future__ import annotations

from tradeloop.registry.mlflow_registry import (
    CHALLENGER,
    COMPLETE_TAG,
    ONNX_FILE,
    ModelVersion,
    Registry,
    sha256_file,
)

# What the version's card and monitoring read from its run.
COPIED_ARTIFACTS = ("card_info.json", "reference_profile.json")


def register_variant(
    registry: Registry,
    base: ModelVersion,
    onnx_bytes: bytes,
    *,
    run_name: str,
    reason: str,
    trained_at: str,
    alias: str | None = CHALLENGER,
) -> ModelVersion:
    """Register `onnx_bytes` as a new version of `base.name`, carrying `base`'s lineage tags
    (with its own sha256, run, reason and time) and copies of `base`'s card and profile."""
    with registry.start_run(base.name, run_name, {"tradeloop.reason": reason}) as run:
        logged = run.log_onnx_model(onnx_bytes, base.features, pip_requirements=[])
        for artifact in COPIED_ARTIFACTS:
            run.log_artifact(registry.run_artifact(base.run_id or "", artifact))
        sha = sha256_file(registry.model_dir_of(logged.model_uri) / ONNX_FILE)
        tags = {
            **base.tags,
            "onnx_sha256": sha,
            "reason": reason,
            "training_run": run.run_id,
            "trained_at": trained_at,
        }
        tags.pop(COMPLETE_TAG, None)
        # the base's explainer explains the base's graph, not this one: no attributions
        tags.pop("explainer_sha256", None)
        return registry.register(base.name, logged.model_uri, run.run_id, tags, alias=alias)
