"""`tradeloop audit list` and `tradeloop audit verify`."""

from __future__ import annotations

from typing import Annotated

import typer

from tradeloop.cli._common import (
    JsonOpt,
    PipelineOpt,
    SpecOpt,
    emit_json,
    err,
    handle_errors,
    load_project,
    out,
)

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@audit_app.command("list")
@handle_errors
def list_(
    spec: SpecOpt = None,
    pipeline: PipelineOpt = None,
    json_: JsonOpt = False,
    limit: Annotated[int | None, typer.Option(help="Only the newest N entries.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action.")] = None,
) -> None:
    """List audit entries, oldest first."""
    project = load_project(spec, pipeline, any_=True)
    entries = project.store.audit.list(limit=limit, action=action)
    if json_:
        emit_json([e.to_dict() for e in entries])
        return
    for e in entries:
        out.print(
            f"{e.id:>5} {e.to_dict()['ts']} {e.actor:<12} {e.action:<24} {e.subject} "
            f"{e.payload if e.payload else ''}",
            markup=False,
        )


@audit_app.command("verify")
@handle_errors
def verify(spec: SpecOpt = None, pipeline: PipelineOpt = None, json_: JsonOpt = False) -> None:
    """Recompute the hash chain; exit 1 naming the first bad entry if anything was altered."""
    project = load_project(spec, pipeline, any_=True)
    v = project.store.audit.verify()
    if json_:
        emit_json(v.to_dict())
    elif v.ok:
        out.print(f"audit log ok: {v.entries} entries, chain intact")
    else:
        err.print(f"audit log BROKEN at entry {v.first_bad_id}: {v.problem}", markup=False)
    if not v.ok:
        raise typer.Exit(1)
