"""Identities: bootstrap of the first admin, roles, expiry, the owner-only local credential."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from tradeloop.clock import SimulatedClock
from tradeloop.errors import BadInput
from tradeloop.security.identity import (
    Forbidden,
    create_as,
    plain_token,
    require,
    save_local_credential,
)
from tradeloop.security.tokens import list_tokens, revoke_token, role_allows
from tradeloop.store import Store


def test_first_admin_only_while_none_exists(store: Store) -> None:
    with pytest.raises(Forbidden, match="create the first admin"):
        create_as(store, None, name="op", role="operator", user="bob@example.com")
    admin, info = create_as(store, None, name="root", role="admin", user="alice@example.com")
    assert info.user == "alice@example.com" and info.actor == "alice@example.com"
    with pytest.raises(Forbidden, match="needs an admin token once an admin exists"):
        create_as(store, None, name="x", role="admin", user="mallory@example.com")
    op, _ = create_as(store, admin, name="op", role="operator", user="bob@example.com")
    with pytest.raises(Forbidden, match=r"bob@example\.com has role operator"):
        create_as(store, op, name="y", role="admin", user="mallory@example.com")
    _, second = create_as(store, admin, name="root2", role="admin", user="carol@example.com")
    creators = [(e.actor, e.payload["user"]) for e in store.audit.list()]
    assert creators == [
        ("alice@example.com", "alice@example.com"),
        ("alice@example.com", "bob@example.com"),
        ("alice@example.com", "carol@example.com"),
    ]
    assert {r["user"] for r in list_tokens(store)} == {
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
    }
    assert second.role == "admin"


def test_bootstrap_reopens_only_when_every_admin_is_gone(store: Store) -> None:
    _, info = create_as(store, None, name="root", role="admin", user="alice@example.com")
    revoke_token(store, info.id, actor="alice@example.com")
    _, again = create_as(store, None, name="root", role="admin", user="dana@example.com")
    assert again.user == "dana@example.com"


def test_roles_are_ordered_and_checked(store: Store) -> None:
    admin, _ = create_as(store, None, name="root", role="admin", user="alice@example.com")
    op, _ = create_as(store, admin, name="op", role="operator", user="bob@example.com")
    ap, _ = create_as(store, admin, name="ap", role="approver", user="carol@example.com")
    assert require(store, op, "operator", "deploy").user == "bob@example.com"
    with pytest.raises(Forbidden, match=r"needs role approver or higher; bob@example\.com"):
        require(store, op, "approver", "models approve")
    assert require(store, ap, "operator", "deploy").role == "approver"
    with pytest.raises(Forbidden, match="deploy needs a token with role operator"):
        require(store, None, "operator", "deploy")
    with pytest.raises(Forbidden, match="unknown, revoked or expired"):
        require(store, "tl_nope", "viewer", "deploy")
    assert role_allows("admin", "approver") and not role_allows("predictor", "operator")
    with pytest.raises(BadInput, match="role must be one of"):
        create_as(store, admin, name="g", role="god", user="x@example.com")


def test_tokens_expire(store: Store, clock: SimulatedClock) -> None:
    admin, _ = create_as(store, None, name="root", role="admin", user="alice@example.com")
    soon = clock.now() + timedelta(hours=1)
    tmp, info = create_as(
        store, admin, name="tmp", role="operator", user="eve@example.com", expires_at=soon
    )
    assert info.expires_at == soon
    assert require(store, tmp, "operator", "deploy").user == "eve@example.com"
    clock.advance(timedelta(hours=2))
    with pytest.raises(Forbidden, match="expired"):
        require(store, tmp, "operator", "deploy")
    with pytest.raises(BadInput, match="not in the future"):
        create_as(store, admin, name="old", role="viewer", user="x@e.com", expires_at=soon)


def test_local_credential_is_owner_only_and_still_names_the_user(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRADELOOP_TOKEN", raising=False)
    admin, _ = create_as(store, None, name="root", role="admin", user="alice@example.com")
    path = save_local_credential(tmp_path, admin)
    assert path.stat().st_mode & 0o777 == 0o600
    found = plain_token(None, tmp_path)
    assert require(store, found, "admin", "tokens create").actor == "alice@example.com"
    monkeypatch.setenv("TRADELOOP_TOKEN", "tl_from_env")
    assert plain_token(None, tmp_path) == "tl_from_env"
    assert plain_token("tl_given", tmp_path) == "tl_given"
    monkeypatch.delenv("TRADELOOP_TOKEN")
    os.chmod(path, 0o644)
    with pytest.raises(Forbidden, match="readable by others"):
        plain_token(None, tmp_path)
