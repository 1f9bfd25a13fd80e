"""`approval: manual`, enforced wherever live traffic is given: the deployer, `deploy`, `promote`.

A version gets no live traffic until a decision row says `approved`. The one way past that is
break-glass: an admin's `--override-approval --reason ...`, which is audited under the admin's
name and opens a firing `approval_override` alert in the same transaction, so it shows in
`tradeloop status` and on the alert routes until someone resolves it.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select

from tradeloop.errors import BadInput
from tradeloop.security.identity import Forbidden
from tradeloop.security.tokens import TokenInfo, role_allows
from tradeloop.store import Store
from tradeloop.store.alerts import AlertRecord, insert_alert
from tradeloop.store.tables import version_decisions

OVERRIDE_RULE = "approval_override"


def decision_of(store: Store, name: str, version: str) -> Literal["approved", "rejected"] | None:
    """`rejected` if anyone rejected it, else `approved` if anyone approved it, else None."""
    with store.engine.connect() as c:
        rows = c.execute(
            select(version_decisions.c.decision).where(
                version_decisions.c.model_name == name, version_decisions.c.version == version
            )
        ).all()
    decisions = {r.decision for r in rows}
    if "rejected" in decisions:
        return "rejected"
    return "approved" if "approved" in decisions else None


def approvers_of(store: Store, name: str, version: str) -> list[str]:
    """Who approved `version`, oldest first: named in the pin commit that promotes it."""
    with store.engine.connect() as c:
        rows = c.execute(
            select(version_decisions.c.actor)
            .where(
                version_decisions.c.model_name == name,
                version_decisions.c.version == version,
                version_decisions.c.decision == "approved",
            )
            .order_by(version_decisions.c.id)
        ).all()
    return [str(r.actor) for r in rows]


def require_live_approval(
    store: Store,
    approval: str,
    name: str,
    version: str,
    caller: TokenInfo,
    action: str,
    *,
    override_reason: str | None = None,
) -> str:
    """Allow `version` live traffic, or raise. Returns how: `policy`, `approved` or `override`.

    `approval` is the spec's `deployment.approval`. A rejected version is refused even with
    an override: rejecting is the stronger decision, and un-rejecting is a separate act.
    """
    decision = decision_of(store, name, version)
    if decision == "rejected":
        raise BadInput(f"{action}: v{version} was rejected; it gets no live traffic")
    if approval != "manual":
        return "policy"
    if decision == "approved":
        return "approved"
    if override_reason is None:
        raise Forbidden(
            f"{action}: deployment.approval is manual and v{version} is not approved; an "
            f"approver runs `tradeloop models approve {version}` (or an admin breaks glass with "
            "--override-approval --reason ...)"
        )
    if not override_reason.strip():
        raise BadInput("--override-approval needs a --reason saying why")
    if not role_allows(caller.role, "admin"):
        raise Forbidden(
            f"{action}: --override-approval needs role admin; {caller.actor} has {caller.role}"
        )
    now = store.clock.now()
    with store.begin() as conn:
        store.audit.append(
            caller.actor,
            "approval.override",
            f"model:{name}/{version}",
            {"action": action, "reason": override_reason, "role": caller.role},
            conn=conn,
        )
        insert_alert(
            conn,
            AlertRecord(
                id=0,
                rule=OVERRIDE_RULE,
                fingerprint=f"{name}/{version}",
                state="firing",
                value=None,
                started_at=now,
                fired_at=now,
                resolved_at=None,
                last_eval_at=now,
                labels={
                    "model": name,
                    "version": version,
                    "actor": caller.actor,
                    "reason": override_reason[:200],
                },
            ),
        )
    return "override"
