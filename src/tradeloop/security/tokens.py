"""API tokens with roles, stored as SHA-256 hashes (the plain token is shown once, at creation).

Roles are ordered: `viewer` < `predictor` < `operator` < `admin`; a route asks for the least
role it needs and any higher role passes. `feeder` stands beside that line: it may feed bars
(`POST /v1/bars` when `serving.bars_role` is `feeder`) and do what a viewer does, not predict;
operators and admins may feed too, predictors may not.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update

from tradeloop.errors import BadInput, NotFound, RuntimeFailure
from tradeloop.store import Store
from tradeloop.store.tables import tokens

ROLES = ("viewer", "feeder", "predictor", "operator", "admin")
RANKED = ("viewer", "predictor", "operator", "admin")
TOKEN_PREFIX = "tl_"


def role_allows(role: str, needed: str) -> bool:
    if role == needed:
        return True
    if role == "feeder":
        return needed == "viewer"
    if needed == "feeder":
        return role in ("operator", "admin")
    return RANKED.index(role) >= RANKED.index(needed)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: str


def create_token(
    store: Store, name: str, role: str, *, actor: str = "cli"
) -> tuple[str, TokenInfo]:
    if role not in ROLES:
        raise BadInput(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    if not name.strip():
        raise BadInput("a token needs a name")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with store.begin() as conn:
        res = conn.execute(
            tokens.insert().values(
                name=name, role=role, token_hash=hash_token(plain), created_at=store.clock.now()
            )
        )
        key = res.inserted_primary_key
        if key is None:  # SQLAlchemy types it optional; an INSERT of one row always has one
            raise RuntimeFailure("the token insert returned no primary key")
        tid = int(key[0])
        store.audit.append(
            actor, "token.create", f"token:{tid}", {"name": name, "role": role}, conn=conn
        )
    return plain, TokenInfo(tid, name, role)


def verify_token(store: Store, plain: str) -> TokenInfo | None:
    with store.engine.connect() as c:
        r = c.execute(
            select(tokens).where(
                tokens.c.token_hash == hash_token(plain), tokens.c.revoked_at.is_(None)
            )
        ).first()
    return TokenInfo(r.id, r.name, r.role) if r else None


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
            "role": r.role,
            "created_at": str(r.created_at),
            "revoked": r.revoked_at is not None,
        }
        for r in rows
    ]
