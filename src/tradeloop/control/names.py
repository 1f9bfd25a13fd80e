"""Controller names: `kind` for a root `tradeloop.yaml`, `kind:<pipeline>` for a pipeline
file under `pipelines/`. The name keys the leader lease, run records, events and metrics.

Its own module so `tradeloop status` can name controllers without importing them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradeloop.project import Project

__all__ = ["MAX_PIPELINE_NAME", "controller_name"]

MAX_PIPELINE_NAME = 54  # `<kind>:<name>` must fit the 64 characters a controller name has


def controller_name(kind: str, project_or_name: Project | str) -> str:
    """The name of controller `kind` for this pipeline (a Project, or a pipeline file's name)."""
    if not isinstance(project_or_name, str):
        if not project_or_name.in_pipelines_dir:
            return kind
        project_or_name = project_or_name.spec.name
    return f"{kind}:{project_or_name}"
