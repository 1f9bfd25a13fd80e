"""Alembic environment: runs on the connection tradeloop hands it (see store.engine.migrate)."""

from __future__ import annotations

from alembic import context

from tradeloop.store.tables import metadata

connection = context.config.attributes["connection"]
# Our own version table: Optuna's RDB storage (sharing this database) uses `alembic_version`.
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    version_table="tradeloop_alembic_version",
)
with context.begin_transaction():
    context.run_migrations()
