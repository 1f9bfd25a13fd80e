"""Who is acting: a token resolved to its user and role, checked before any mutating step.

Every mutating command (deploy, promote, approve, reject, token create and revoke) resolves
its caller here and records `TokenInfo.actor` (the user) in the audit log, so the log names a
person, never a shared credential. The token comes from `--token`, else `TRADELOOP_TOKEN`,
else the local credential file `<state>/admin.token` (see `save_local_credential`): a file
the owner alone can read, kept for a single-user embedded project. It is a token like any
other, so its user is still recorded and revoking it ends it; it is never a silent bypass.
"""

from __future__ import annotations

import os
import stat
from datetime import datetime
from pathlib import Path

from tradeloop.errors import BadInput
from tradeloop.security.tokens import (
    TokenInfo,
    active_admins,
    check_role,
    create_token,
    role_allows,
    verify_token,
)
from tradeloop.store import Store

TOKEN_ENV = "TRADELOOP_TOKEN"
LOCAL_CREDENTIAL = "admin.token"


class Forbidden(BadInput):
    """The caller has no token, an unknown one, or one whose role is too weak."""


def local_credential_path(state_dir: Path) -> Path:
    return state_dir / LOCAL_CREDENTIAL


def save_local_credential(state_dir: Path, plain: str) -> Path:
    """Write the token to `<state>/admin.token`, readable by the owner only (0600)."""
    path = local_credential_path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(plain + "\n")
    os.chmod(path, 0o600)
    return path


def _read_local(state_dir: Path | None) -> str | None:
    if state_dir is None:
        return None
    path = local_credential_path(state_dir)
    if not path.is_file():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise Forbidden(f"{path} is readable by others (mode {mode:o}); chmod 600 it or delete it")
    return path.read_text().strip() or None


def plain_token(given: str | None, state_dir: Path | None = None) -> str | None:
    """The token to act with: `--token`, else $TRADELOOP_TOKEN, else the local credential."""
    return given or os.environ.get(TOKEN_ENV) or _read_local(state_dir)


def require(store: Store, plain: str | None, role: str, action: str) -> TokenInfo:
    """The caller's identity if its token has `role` or higher; Forbidden (exit 2) otherwise."""
    check_role(role)
    if not plain:
        raise Forbidden(
            f"{action} needs a token with role {role} or higher: pass --token or set "
            f"{TOKEN_ENV} (an admin creates one with `tradeloop tokens create`)"
        )
    info = verify_token(store, plain)
    if info is None:
        raise Forbidden(f"{action}: the token is unknown, revoked or expired")
    if not role_allows(info.role, role):
        raise Forbidden(f"{action} needs role {role} or higher; {info.actor} has role {info.role}")
    return info


def create_as(
    store: Store,
    caller_token: str | None,
    *,
    name: str,
    role: str,
    user: str,
    expires_at: datetime | None = None,
) -> tuple[str, TokenInfo]:
    """Create a token on behalf of the caller.

    Bootstrap: while no active admin token exists, an admin token may be created without one
    (the first admin). Otherwise every token creation needs an admin token. The check and the
    insert share one transaction, so two bootstraps racing make one admin.
    """
    check_role(role)
    caller = verify_token(store, caller_token) if caller_token else None
    if caller_token and caller is None:
        raise Forbidden("tokens create: the token is unknown, revoked or expired")
    with store.begin() as conn:
        if caller is None or not role_allows(caller.role, "admin"):
            if active_admins(store, conn) > 0:
                who = f"{caller.actor} has role {caller.role}" if caller else "no token given"
                raise Forbidden(f"tokens create needs an admin token once an admin exists ({who})")
            if role != "admin":
                raise Forbidden(
                    "no admin exists yet: create the first admin token first "
                    "(tradeloop tokens create --role admin --user you@example.com)"
                )
            actor = user  # the first admin names themselves
        else:
            actor = caller.actor
        return create_token(
            store, name, role, user=user, expires_at=expires_at, actor=actor, conn=conn
        )
