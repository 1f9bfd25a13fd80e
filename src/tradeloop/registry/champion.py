"""Moving the `champion` alias: explicit, audited, and refused for rejected versions."""

from __future__ import annotations

from typing import Any

from tradeloop.errors import BadInput
from tradeloop.registry.mlflow_registry import CHALLENGER, CHAMPION, Registry
from tradeloop.store import Store


def promote_version(
    store: Store,
    registry: Registry,
    name: str,
    version: str,
    *,
    actor: str,
    reason: str = "manual promotion",
) -> dict[str, Any]:
    v = registry.get(name, version)
    if v.rejected:
        raise BadInput(
            f"v{version} was rejected ({v.tags.get('tradeloop.reason', '')}); it cannot be promoted"
        )
    prev = registry.by_alias(name, CHAMPION)
    if prev is not None and prev.version == v.version:
        return {"version": v.version, "previous": prev.version, "changed": False}
    registry.set_alias(name, CHAMPION, v.version)
    if prev is not None:
        registry.set_alias(name, "previous", prev.version)
    chal = registry.by_alias(name, CHALLENGER)
    if chal is not None and chal.version == v.version:
        registry.delete_alias(name, CHALLENGER)
    store.audit.append(
        actor,
        "model.promote",
        f"model:{name}/{v.version}",
        {"previous": prev.version if prev else None, "reason": reason},
    )
    return {"version": v.version, "previous": prev.version if prev else None, "changed": True}
