"""`tradeloop tokens ...`."""

from __future__ import annotations

from typing import Annotated

import typer

from tradeloop.cli._common import JsonOpt, SpecOpt, emit_json, handle_errors, load_project, out

tokens_app = typer.Typer(help="API tokens with roles (stored hashed).", no_args_is_help=True)


@tokens_app.command("create")
@handle_errors
def create(
    name: Annotated[str, typer.Option(help="Who or what uses it.")] = "cli",
    role: Annotated[
        str, typer.Option(help="viewer | feeder | predictor | operator | admin")
    ] = "operator",
    spec: SpecOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Create a token; it is shown once."""
    from tradeloop.security.tokens import create_token

    project = load_project(spec)
    plain, info = create_token(project.store, name, role)
    if json_:
        emit_json({"id": info.id, "name": info.name, "role": info.role, "token": plain})
    else:
        out.print(
            f"token {info.id} ({info.role}): {plain}\nstore it now; it is not shown again",
            markup=False,
        )


@tokens_app.command("list")
@handle_errors
def list_(spec: SpecOpt = None, json_: JsonOpt = False) -> None:
    from tradeloop.security.tokens import list_tokens

    rows = list_tokens(load_project(spec).store)
    if json_:
        emit_json(rows)
    else:
        for r in rows:
            out.print(
                f"{r['id']:>4} {r['name']:<20} {r['role']:<10} {'revoked' if r['revoked'] else ''}",
                markup=False,
            )


@tokens_app.command("revoke")
@handle_errors
def revoke(token_id: int, spec: SpecOpt = None) -> None:
    from tradeloop.security.tokens import revoke_token

    revoke_token(load_project(spec).store, token_id)
    out.print(f"token {token_id} revoked")
