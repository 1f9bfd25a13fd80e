"""A version's model card: rendered from the run's card data, with its version and tags."""

from __future__ import annotations

import json

from tradeloop.errors import NotFound
from tradeloop.registry.mlflow_registry import ModelVersion, Registry
from tradeloop.registry.model_card import render_html, render_markdown


def card_for(registry: Registry, version: ModelVersion) -> tuple[str, str]:
    if version.run_id is None:
        raise NotFound(f"version {version.version} has no training run")
    info = json.loads(registry.run_artifact(version.run_id, "card_info.json").read_text())
    info["version"] = version.version
    info["lineage"] = {k: v for k, v in version.tags.items() if not k.startswith("metric.")}
    md_text = render_markdown(info)
    return md_text, render_html(md_text, f"{version.name} v{version.version} model card")
