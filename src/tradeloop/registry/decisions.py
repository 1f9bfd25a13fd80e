"""Human approval of a version before it takes live traffic (`deployment.approval: manual`)."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tradeloop.errors import BadInput
from tradeloop.registry.mlflow_registry import Registry
from tradeloop.security.tokens import TokenInfo, role_allows
from tradeloop.store import Store
from tradeloop.store.tables import version_decisions

Decision = Literal["approved", "rejected"]


def decide(
    store: Store,
    registry: Registry,
    name: str,
    version: str,
    decision: Decision,
    token: TokenInfo,
    reason: str = "",
    *,
    four_eyes: bool = False,
) -> dict[str, object]:
    """Record an approval or rejection by a token holder with the approver role (or higher).

    `four_eyes`: the approver must not be whoever registered the version (its `registered_by`
    tag) or triggered its training (`triggered_by`).
    """
    if not role_allows(token.role, "approver"):
        raise BadInput(f"{token.actor} has role {token.role}; deciding on a version needs approver")
    v = registry.get(name, version)  # complete versions only
    actor = token.actor
    if four_eyes and decision == "approved":
        authors = {v.tags.get("registered_by"), v.tags.get("triggered_by")} - {None, ""}
        if actor in authors:
            raise BadInput(
                f"four-eyes rule: {actor} registered or triggered v{version}; another approver "
                "must approve it"
            )
    with store.begin() as c:
        other = "rejected" if decision == "approved" else "approved"
        clash = c.execute(
            select(version_decisions).where(
                version_decisions.c.model_name == name,
                version_decisions.c.version == version,
                version_decisions.c.decision == other,
            )
        ).first()
        if clash is not None:
            raise BadInput(f"v{version} was already {other} by {clash.actor}")
        try:
            with c.begin_nested():
                c.execute(
                    version_decisions.insert().values(
                        model_name=name,
                        version=version,
                        decision=decision,
                        actor=actor,
                        reason=reason,
                        ts=store.clock.now(),
                    )
                )
        except IntegrityError:
            return {"version": version, "decision": decision, "changed": False}
        action = "model.approve" if decision == "approved" else "model.reject"
        store.audit.append(
            actor, action, f"model:{name}/{version}", {"reason": reason, "role": token.role}, conn=c
        )
    return {"version": version, "decision": decision, "changed": True}
