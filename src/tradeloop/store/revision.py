"""Which schema revision the code expects, readable without SQLAlchemy (`store.reads`)."""

# Our own version table: Optuna's RDB storage (sharing this database) uses `alembic_version`.
VERSION_TABLE = "tradeloop_alembic_version"
# The newest revision in migrations/versions; tests/store checks it against Alembic's head.
SCHEMA_HEAD = "0005"

__all__ = ["SCHEMA_HEAD", "VERSION_TABLE"]
