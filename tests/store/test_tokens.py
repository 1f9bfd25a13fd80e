from __future__ import annotations

import pytest
from sqlalchemy import select

from tradeloop.errors import BadInput, NotFound
from tradeloop.security.tokens import create_token, revoke_token, role_allows, verify_token
from tradeloop.store import Store
from tradeloop.store.tables import tokens


def test_tokens_are_stored_hashed_and_verify(store: Store) -> None:
    plain, info = create_token(store, "ci", "operator")
    with store.engine.connect() as c:
        stored = c.execute(select(tokens.c.token_hash)).scalar_one()
    assert plain not in stored and len(stored) == 64
    assert verify_token(store, plain) == info
    assert verify_token(store, plain + "x") is None
    revoke_token(store, info.id)
    assert verify_token(store, plain) is None
    with pytest.raises(NotFound):
        revoke_token(store, info.id)
    assert [e.action for e in store.audit.list()] == ["token.create", "token.revoke"]


def test_roles() -> None:
    assert role_allows("admin", "operator") and not role_allows("predictor", "operator")


def test_feeder_stands_beside_predictor() -> None:
    assert role_allows("feeder", "feeder") and role_allows("feeder", "viewer")
    assert not role_allows("feeder", "predictor") and not role_allows("predictor", "feeder")
    assert role_allows("operator", "feeder") and role_allows("admin", "feeder")
    assert not role_allows("viewer", "feeder")


def test_unknown_role_is_refused(store: Store) -> None:
    with pytest.raises(BadInput, match="role must be one of"):
        create_token(store, "x", "god")
