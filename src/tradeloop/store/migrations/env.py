"""Alembic environment: runs on the connection tradeloop hands it (see store.engine.migrate)."""

from __future__ import annotations

from alembic import context

from tradeloop.store.engine import VERSION_TABLE
from tradeloop.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
