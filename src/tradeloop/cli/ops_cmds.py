"""`tradeloop tokens ...`: tokens bound to a named user, created by an admin.

The first admin token can be made without a token, only while no admin exists; every later
`tokens create` and every `tokens revoke` needs an admin token (`--token`, $TRADELOOP_TOKEN, or
the owner-only `<state>/admin.token` that `--save-local` writes for a single-user project).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from tradeloop.cli._common import (
    JsonOpt,
    PipelineOpt,
    SpecOpt,
    TokenOpt,
    caller,
    emit_json,
    handle_errors,
    load_project,
    out,
)
from tradeloop.errors import BadInput

tokens_app = typer.Typer(help="API tokens with roles (stored hashed).", no_args_is_help=True)


def _expiry(text: str | None) -> datetime | None:
    if text is None:
        return None
    from tradeloop.clock import utc

    try:
        return utc(datetime.fromisoformat(text))
    except ValueError as exc:
        raise BadInput(f"--expires must be an ISO date or time, got {text!r}") from exc


@tokens_app.command("create")
@handle_errors
def create(
    user: Annotated[str, typer.Option(help="The person it acts for, e.g. alice@example.com.")],
    role: Annotated[
        str, typer.Option(help="viewer | feeder | predictor | operator | approver | admin")
    ] = "operator",
    name: Annotated[str | None, typer.Option(help="A label (default: the user).")] = None,
    expires: Annotated[
        str | None, typer.Option(help="Expiry, ISO date or time (UTC if no zone).")
    ] = None,
    save_local: Annotated[
        bool,
        typer.Option(help="Also write it to <state>/admin.token (mode 0600) for this project."),
    ] = False,
    token: TokenOpt = None,
    spec: SpecOpt = None,
    pipeline: PipelineOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Create a token (needs an admin token, except for the very first admin); shown once."""
    from tradeloop.security.identity import create_as, plain_token, save_local_credential

    project = load_project(spec, pipeline, any_=True)
    plain, info = create_as(
        project.store,
        plain_token(token, project.state_dir),
        name=name or user,
        role=role,
        user=user,
        expires_at=_expiry(expires),
    )
    saved = save_local_credential(project.state_dir, plain) if save_local else None
    if json_:
        emit_json(
            {
                "id": info.id,
                "name": info.name,
                "user": info.user,
                "role": info.role,
                "expires_at": info.expires_at.isoformat() if info.expires_at else None,
                "token": plain,
                "saved_to": str(saved) if saved else None,
            }
        )
    else:
        out.print(
            f"token {info.id} for {info.user} ({info.role}): {plain}\n"
            "store it now; it is not shown again" + (f"\nsaved to {saved}" if saved else ""),
            markup=False,
        )


@tokens_app.command("list")
@handle_errors
def list_(
    token: TokenOpt = None,
    spec: SpecOpt = None,
    pipeline: PipelineOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The tokens there are (an admin's view: names, users, roles; never the tokens)."""
    from tradeloop.security.tokens import list_tokens

    project = load_project(spec, pipeline, any_=True)
    caller(project, token, "admin", "tokens list")
    rows = list_tokens(project.store)
    if json_:
        emit_json(rows)
    else:
        for r in rows:
            out.print(
                f"{r['id']:>4} {r['user']!s:<28} {r['role']:<9} "
                f"{'revoked' if r['revoked'] else ''}",
                markup=False,
            )


@tokens_app.command("revoke")
@handle_errors
def revoke(
    token_id: int, token: TokenOpt = None, spec: SpecOpt = None, pipeline: PipelineOpt = None
) -> None:
    """Revoke a token (admin; audited)."""
    from tradeloop.security.tokens import revoke_token

    project = load_project(spec, pipeline, any_=True)
    who = caller(project, token, "admin", "tokens revoke")
    revoke_token(project.store, token_id, actor=who.actor)
    out.print(f"token {token_id} revoked")
