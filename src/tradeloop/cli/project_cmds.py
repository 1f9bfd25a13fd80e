"""`tradeloop init` and `tradeloop validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tradeloop.cli._common import JsonOpt, SpecOpt, emit_json, err, handle_errors, out


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def init(
        directory: Annotated[Path, typer.Argument(help="Folder for the new project.")] = Path("."),
        name: Annotated[str | None, typer.Option(help="Pipeline name (default: folder).")] = None,
        json_: JsonOpt = False,
    ) -> None:
        """Create a git repository with a commented example spec that runs on the simulator."""
        from tradeloop.templates import init_project

        path = init_project(directory, name)
        if json_:
            emit_json({"spec": str(path), "directory": str(path.parent)})
        else:
            out.print(
                f"created {path}\nnext: cd {directory} && tradeloop validate && tradeloop data check"
            )

    @app.command()
    @handle_errors
    def validate(spec: SpecOpt = None, json_: JsonOpt = False) -> None:
        """Check the spec: unknown keys, types, ranges and cross-references, with line numbers."""
        from tradeloop.control.canary_units import check_steps
        from tradeloop.spec import format_duration, load_spec
        from tradeloop.spec.secrets import literal_secrets

        loaded = load_spec(spec)
        s = loaded.spec
        units = s.sticky_units
        splits = (
            check_steps([st.weight for st in s.deployment.steps], units)
            if units and s.deployment.strategy == "canary"
            else []
        )
        warnings = literal_secrets({k: w.url for k, w in s.monitoring.webhooks.items()})
        doc = {
            "ok": True,
            "spec": str(loaded.path),
            "name": s.name,
            "spec_hash": s.spec_hash(),
            "source": s.data.source,
            "frequency": format_duration(s.data.frequency),
            "features": s.feature_names,
            "model": s.model.type,
            "task": s.model.task,
            "canary_splits": [sp.to_dict() for sp in splits],
            "warnings": warnings,
        }
        for warning in warnings:
            err.print(f"[yellow]warning:[/yellow] {warning}", markup=True)
        if json_:
            emit_json(doc)
        else:
            out.print(
                f"{loaded.path}: ok — pipeline '{s.name}', {len(s.features)} features, "
                f"{s.model.type} {s.model.task}, data from {s.data.source}"
            )
