"""API tokens bound to a named user, with a role and an optional expiry, stored as SHA-256 hashes
(the plain token is shown once, at creation).

Roles are ordered: `viewer` < `predictor` < `operator` < `approver` < `admin`; a route or
command asks for the least role it needs and any higher role passes. `predictor` is the serving
role (prediction endpoints); `approver` may approve or reject versions for live traffic.
`feeder` stands beside that line: it may feed bars (`POST /v1/bars` when `serving.bars_role`
is `feeder`) and do what a viewer does, not predict; operators and above may feed too,
predictors may not.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from tradeloop.clock import utc
from tradeloop.errors import BadInput, NotFound, RuntimeFailure
from tradeloop.store import Store
from tradeloop.store.tables import tokens

ROLES = ("viewer", "feeder", "predictor", "operator", "approver", "admin")
RANKED = ("viewer", "predictor", "operator", "approver", "admin")
TOKEN_PREFIX = "tl_"


def check_role(role: str) -> str:
    if role not in ROLES:
        raise BadInput(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    return role


def role_allows(role: str, needed: str) -> bool:
    check_role(needed)
    if role not in ROLES:
        return False
    if role == needed:
        return True
    if role == "feeder":
        return needed == "viewer"
    if needed == "feeder":
        return RANKED.index(role) >= RANKED.index("operator")
    return RANKED.index(role) >= RANKED.index(needed)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: str
    user: str = ""
    expires_at: datetime | None = None

    @property
    def actor(self) -> str:
        """Who acts, as the audit log records it: the user, else the token's name."""
        return self.user or f"token:{self.name}"


def _info(r: Any) -> TokenInfo:  # a Row of `tokens`; SQLAlchemy types its columns Any
    exp = r.expires_at
    return TokenInfo(
        int(r.id),
        str(r.name),
        str(r.role),
        str(r.user or ""),
        utc(exp) if exp is not None else None,
    )


def create_token(
    store: Store,
    name: str,
    role: str,
    *,
    user: str | None = None,
    expires_at: datetime | None = None,
    actor: str = "cli",
    conn: Connection | None = None,
) -> tuple[str, TokenInfo]:
    """A new token for `user` (default: `name`); `conn` joins a caller's transaction."""
    check_role(role)
    if not name.strip():
        raise BadInput("a token needs a name")
    user = (user if user is not None else name).strip()
    if not user:
        raise BadInput("a token needs a user (--user alice@example.com)")
    if expires_at is not None and utc(expires_at) <= utc(store.clock.now()):
        raise BadInput(f"expiry {expires_at.isoformat()} is not in the future")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    if conn is None:
        with store.begin() as c:
            return plain, _insert(store, c, plain, name, role, user, expires_at, actor)
    return plain, _insert(store, conn, plain, name, role, user, expires_at, actor)


def _insert(
    store: Store,
    conn: Connection,
    plain: str,
    name: str,
    role: str,
    user: str,
    expires_at: datetime | None,
    actor: str,
) -> TokenInfo:
    res = conn.execute(
        tokens.insert().values(
            name=name,
            role=role,
            user=user,
            expires_at=expires_at,
            token_hash=hash_token(plain),
            created_at=store.clock.now(),
        )
    )
    key = res.inserted_primary_key
    if key is None:  # SQLAlchemy types it optional; an INSERT of one row always has one
        raise RuntimeFailure("the token insert returned no primary key")
    tid = int(key[0])
    store.audit.append(
        actor,
        "token.create",
        f"token:{tid}",
        {
            "name": name,
            "role": role,
            "user": user,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
        conn=conn,
    )
    return TokenInfo(tid, name, role, user, utc(expires_at) if expires_at else None)


def verify_token(store: Store, plain: str) -> TokenInfo | None:
    """The token's holder, or None when it is unknown, revoked or expired."""
    with store.engine.connect() as c:
        r = c.execute(
            select(tokens).where(
                tokens.c.token_hash == hash_token(plain), tokens.c.revoked_at.is_(None)
            )
        ).first()
    if r is None:
        return None
    info = _info(r)
    if info.expires_at is not None and info.expires_at <= utc(store.clock.now()):
        return None
    return info


def active_admins(store: Store, conn: Connection) -> int:
    """How many unrevoked, unexpired admin tokens there are."""
    now = utc(store.clock.now())
    rows = conn.execute(
        select(tokens.c.expires_at).where(tokens.c.role == "admin", tokens.c.revoked_at.is_(None))
    ).all()
    return sum(1 for (exp,) in rows if exp is None or utc(exp) > now)


def revoke_token(store: Store, token_id: int, *, actor: str = "cli") -> None:
    with store.begin() as conn:
        res = conn.execute(
            update(tokens)
            .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=store.clock.now())
        )
        if res.rowcount == 0:
            raise NotFound(f"no active token with id {token_id}")
        store.audit.append(actor, "token.revoke", f"token:{token_id}", {}, conn=conn)


def list_tokens(store: Store) -> list[dict[str, object]]:
    with store.engine.connect() as c:
        rows = c.execute(select(tokens).order_by(tokens.c.id)).all()
    return [
        {
            "id": r.id,
            "name": r.name,
            "user": r.user or "",
            "role": r.role,
            "created_at": str(r.created_at),
            "expires_at": str(r.expires_at) if r.expires_at else None,
            "revoked": r.revoked_at is not None,
        }
        for r in rows
    ]
