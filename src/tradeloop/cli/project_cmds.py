"""`tradeloop init` and `tradeloop validate`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tradeloop.cli._common import JsonOpt, SpecOpt, emit_json, err, handle_errors, out
from tradeloop.errors import TradeloopError

if TYPE_CHECKING:
    from tradeloop.spec import Spec


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

        loaded = load_spec(spec)
        s = loaded.spec
        units = s.sticky_units
        splits = (
            check_steps([st.weight for st in s.deployment.steps], units)
            if units and s.deployment.strategy == "canary"
            else []
        )
        warnings = _warnings(loaded.path, s)
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


def _warnings(path: Path, spec: Spec) -> list[str]:
    """Things that validate but should not be: a literal webhook URL in a git-tracked spec."""
    from tradeloop.gitops.git import run_git
    from tradeloop.monitoring.references import literal_url_routes

    literal = literal_url_routes(spec.monitoring.webhooks)
    if not literal:
        return []
    try:
        listed = run_git(["ls-files", "--", path.name], cwd=path.parent, ok=None).stdout
        tracked = bool(listed.strip())
    except TradeloopError:  # not a repository (or no git): nothing is tracked
        tracked = False
    if not tracked:
        return []
    return [
        f"monitoring.webhooks.{name}.url is a literal URL in a git-tracked spec: webhook URLs "
        "are credentials; write ${ENV_VAR} or a file path instead"
        for name in literal
    ]
