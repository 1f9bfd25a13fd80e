"""Deployment state: which model versions serve, as which variant, with what weight and mode.

The gateway polls this (it is tiny) and hot-swaps models when it changes; controllers and
`tradeloop deploy` write it, each change in the same transaction as its audit entry.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from sqlalchemy import Connection, delete, select

from tradeloop.clock import utc
from tradeloop.errors import BadInput
from tradeloop.store import Store
from tradeloop.store.tables import deployments

Variant = Literal["champion", "challenger"]
Mode = Literal["live", "shadow"]
VARIANTS: tuple[Variant, ...] = ("champion", "challenger")


@dataclass(frozen=True)
class Deployed:
    model_name: str
    variant: Variant
    version: str
    mode: Mode
    weight: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def current(store: Store, model_name: str, conn: Connection | None = None) -> list[Deployed]:
    q = (
        select(deployments)
        .where(deployments.c.model_name == model_name)
        .order_by(deployments.c.variant)
    )
    if conn is None:
        with store.engine.connect() as c:
            rows = c.execute(q).all()
    else:
        rows = conn.execute(q).all()
    return [Deployed(r.model_name, r.variant, r.version, r.mode, r.weight) for r in rows]


def _check(variant: str, mode: str, weight: int) -> None:
    if variant not in VARIANTS:
        raise BadInput(f"variant must be one of {VARIANTS}, got {variant!r}")
    if mode not in ("live", "shadow"):
        raise BadInput(f"mode must be 'live' or 'shadow', got {mode!r}")
    if not 0 <= weight <= 100:
        raise BadInput(f"weight must be between 0 and 100, got {weight}")


def apply(
    store: Store,
    model_name: str,
    desired: list[Deployed],
    *,
    actor: str,
    reason: str,
) -> list[Deployed]:
    """Replace the model's deployment rows with `desired`, atomically and audited.

    Idempotent: applying the state that is already there writes nothing.
    """
    for d in desired:
        _check(d.variant, d.mode, d.weight)
        if d.model_name != model_name:
            raise BadInput(f"deployment for {d.model_name!r} given under {model_name!r}")
    if len({d.variant for d in desired}) != len(desired):
        raise BadInput("each variant may be deployed once")
    live = [d for d in desired if d.mode == "live"]
    if desired and sum(d.weight for d in live) != 100:
        raise BadInput(f"live weights must add up to 100, got {sum(d.weight for d in live)}")
    with store.begin() as conn:
        before = current(store, model_name, conn)
        if sorted(before, key=lambda d: d.variant) == sorted(desired, key=lambda d: d.variant):
            return before
        now = utc(store.clock.now())
        conn.execute(delete(deployments).where(deployments.c.model_name == model_name))
        for d in desired:
            conn.execute(
                deployments.insert().values(
                    model_name=model_name,
                    variant=d.variant,
                    version=d.version,
                    mode=d.mode,
                    weight=d.weight,
                    updated_at=now,
                )
            )
        store.audit.append(
            actor,
            "deployment.apply",
            f"model:{model_name}",
            {
                "before": [b.to_dict() for b in before],
                "after": [d.to_dict() for d in desired],
                "reason": reason,
            },
            conn=conn,
        )
    return desired
