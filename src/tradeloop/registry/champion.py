"""Moving the `champion` alias: explicit, audited, and refused for rejected versions."""

from __future__ import annotations

from typing import Any, Protocol

from tradeloop.errors import BadInput
from tradeloop.registry.mlflow_registry import CHALLENGER, CHAMPION, ModelVersion
from tradeloop.store import Store


class Aliases(Protocol):
    """What moving the champion needs: `Registry`, or `SqlRegistry` on MLflow's SQL tables."""

    def get(self, name: str, version: str) -> ModelVersion: ...
    def by_alias(self, name: str, alias: str) -> ModelVersion | None: ...
    def set_alias(self, name: str, alias: str, version: str) -> None: ...
    def delete_alias(self, name: str, alias: str) -> None: ...


def promote_version(
    store: Store,
    registry: Aliases,
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
