"""`approval: manual` outside the deployer, and break-glass that is audited and alerts."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from tradeloop.errors import BadInput
from tradeloop.security.approvals import OVERRIDE_RULE, require_live_approval
from tradeloop.security.identity import Forbidden, create_as, require
from tradeloop.store import Store
from tradeloop.store.alerts import firing_alerts
from tradeloop.store.tables import version_decisions


def _decide(store: Store, version: str, decision: str) -> None:
    with store.begin() as c:
        c.execute(
            insert(version_decisions).values(
                model_name="m",
                version=version,
                decision=decision,
                actor="carol@example.com",
                reason="",
                ts=store.clock.now(),
            )
        )


def test_manual_approval_blocks_until_approved(store: Store) -> None:
    admin_plain, _ = create_as(store, None, name="root", role="admin", user="alice@example.com")
    op_plain, _ = create_as(store, admin_plain, name="op", role="operator", user="bob@example.com")
    op = require(store, op_plain, "operator", "deploy")
    assert require_live_approval(store, "auto", "m", "2", op, "deploy") == "policy"
    with pytest.raises(Forbidden, match="not approved"):
        require_live_approval(store, "manual", "m", "2", op, "deploy")
    with pytest.raises(Forbidden, match="needs role admin"):
        require_live_approval(store, "manual", "m", "2", op, "deploy", override_reason="hurry")
    assert firing_alerts(store) == []
    _decide(store, "2", "approved")
    assert require_live_approval(store, "manual", "m", "2", op, "deploy") == "approved"
    _decide(store, "3", "rejected")
    with pytest.raises(BadInput, match="was rejected"):
        require_live_approval(store, "auto", "m", "3", op, "deploy")


def test_break_glass_needs_admin_and_a_reason_and_fires_an_alert(store: Store) -> None:
    admin_plain, _ = create_as(store, None, name="root", role="admin", user="alice@example.com")
    admin = require(store, admin_plain, "admin", "deploy")
    with pytest.raises(BadInput, match="needs a --reason"):
        require_live_approval(store, "manual", "m", "4", admin, "deploy", override_reason=" ")
    how = require_live_approval(
        store, "manual", "m", "4", admin, "deploy", override_reason="market halt fix"
    )
    assert how == "override"
    entry = store.audit.list()[-1]
    assert (entry.actor, entry.action, entry.subject) == (
        "alice@example.com",
        "approval.override",
        "model:m/4",
    )
    assert entry.payload["reason"] == "market halt fix"
    (alert,) = firing_alerts(store)
    assert alert.rule == OVERRIDE_RULE and alert.labels["actor"] == "alice@example.com"
