"""The operational store: one SQL database (SQLite by default, PostgreSQL at scale).

The names are imported on first use: `tradeloop.store.reads` and `tradeloop.store.dbapi`
serve the short commands without SQLAlchemy, and importing them runs this file first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["AuditEntry", "AuditLog", "Store", "Verification"]

if TYPE_CHECKING:
    from tradeloop.store.audit import AuditEntry, AuditLog, Verification
    from tradeloop.store.core import Store


def __getattr__(name: str) -> Any:
    if name == "Store":
        from tradeloop.store.core import Store

        return Store
    if name in ("AuditEntry", "AuditLog", "Verification"):
        from tradeloop.store import audit

        return getattr(audit, name)
    raise AttributeError(f"module 'tradeloop.store' has no attribute {name!r}")
