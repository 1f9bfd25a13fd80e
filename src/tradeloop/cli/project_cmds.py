"""`tradeloop init` and `tradeloop validate`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tradeloop.cli._common import JsonOpt, PipelineOpt, SpecOpt, emit_json, err, handle_errors, out
from tradeloop.errors import TradeloopError

if TYPE_CHECKING:
    from tradeloop.spec import LoadedSpec, Spec


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def init(
        directory: Annotated[Path, typer.Argument(help="Folder for the new project.")] = Path("."),
        name: Annotated[str | None, typer.Option(help="Pipeline name (default: folder).")] = None,
        example: Annotated[
            str,
            typer.Option(
                help="single: one tradeloop.yaml; multi: three pipelines under pipelines/ "
                "(different symbols, frequencies and model types)."
            ),
        ] = "single",
        json_: JsonOpt = False,
    ) -> None:
        """Create a git repository with a commented example spec that runs on the simulator."""
        from tradeloop.templates import init_project

        path = init_project(directory, name, example)
        if json_:
            emit_json({"spec": str(path), "directory": str(path.parent)})
        else:
            check = "tradeloop data check" + (" --pipeline fx-15m" if example == "multi" else "")
            out.print(f"created {path}\nnext: cd {directory} && tradeloop validate && {check}")

    @app.command()
    @handle_errors
    def validate(
        spec: SpecOpt = None, pipeline: PipelineOpt = None, json_: JsonOpt = False
    ) -> None:
        """Check every pipeline's spec (or one): unknown keys, types, ranges and
        cross-references, with file and line numbers. Exit 2 if any does not validate."""
        from tradeloop.spec.catalog import load_catalog, load_pipeline

        where = spec if spec is not None else Path.cwd()
        if pipeline is not None or not where.is_dir():
            loaded = load_pipeline(spec, pipeline)
            doc = _check(loaded)
            if json_:
                emit_json(doc)
            else:
                _say_ok(loaded, doc)
            return
        cat = load_catalog(where)
        found: list[LoadedSpec] = [cat.pipelines[n] for n in sorted(cat.pipelines)]
        docs = [_check(loaded) for loaded in found]
        invalid = [
            {"name": b.name, "file": b.relpath, "problems": b.error.problems} for b in cat.broken
        ]
        if json_:
            if not cat.multi and not invalid:
                emit_json(docs[0])
            else:
                emit_json({"ok": not invalid, "pipelines": docs, "invalid": invalid})
        else:
            for loaded, doc in zip(found, docs, strict=True):
                _say_ok(loaded, doc)
            for b in cat.broken:
                err.print(f"[red]error:[/red] pipeline {b.name} ({b.relpath}):", markup=True)
                err.print(str(b.error), markup=False)
        if invalid:
            raise typer.Exit(2)


def _check(loaded: LoadedSpec) -> dict[str, Any]:
    from tradeloop.control.canary_units import check_steps
    from tradeloop.spec import format_duration

    s = loaded.spec
    units = s.sticky_units
    splits = (
        check_steps([st.weight for st in s.deployment.steps], units)
        if units and s.deployment.strategy == "canary"
        else []
    )
    warnings = _warnings(loaded.path, s)
    for warning in warnings:
        err.print(f"[yellow]warning:[/yellow] {s.name}: {warning}", markup=True)
    return {
        "ok": True,
        "spec": str(loaded.path),
        "name": s.name,
        "spec_hash": s.spec_hash(),
        "source": s.data.source,
        "frequency": format_duration(s.data.frequency),
        "features": s.feature_names,
        "model": s.model.type,
        "task": s.model.task,
        "pin_file": s.deployment.git.pin_file,
        "canary_splits": [sp.to_dict() for sp in splits],
        "warnings": warnings,
    }


def _say_ok(loaded: LoadedSpec, doc: dict[str, Any]) -> None:
    s = loaded.spec
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
