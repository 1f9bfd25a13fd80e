"""The operational store's tables. Alembic migrations in `migrations/` create and evolve them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(200), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# One row: the chain's head, so deleting the newest entries is caught too.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_id", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_name", String(200), nullable=False),
    Column("variant", String(32), nullable=False),
    Column("version", String(32), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("weight", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("model_name", "variant", name="uq_deployments_model_variant"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("user", String(200), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("controller", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("version", String(32), nullable=True),
    Column("reason", Text, nullable=False, default=""),
    Column("payload", JSON, nullable=True),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("rule", String(200), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("value", Float, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("fired_at", DateTime(timezone=True), nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("last_eval_at", DateTime(timezone=True), nullable=False),
    Column("labels", JSON, nullable=True),
)

controller_runs = Table(
    "controller_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("controller", String(64), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("message", Text, nullable=False, default=""),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_name", String(200), nullable=False),
    Column("version", String(32), nullable=False),
    Column("strategy", String(32), nullable=False),
    Column("phase", String(32), nullable=False),
    Column("step", Integer, nullable=False, default=0),
    Column("phase_started_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("analysis", JSON, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("model_name", "version", name="uq_rollouts_model_version"),
)

version_decisions = Table(
    "version_decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_name", String(200), nullable=False),
    Column("version", String(32), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("ts", DateTime(timezone=True), nullable=False),
    UniqueConstraint("model_name", "version", "decision", name="uq_version_decisions"),
)

training_triggers = Table(
    "training_triggers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_name", String(200), nullable=False),
    Column("trigger_key", String(300), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("run_id", String(64), nullable=True),
    Column("version", String(32), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("model_name", "trigger_key", name="uq_training_triggers"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("consumer", String(200), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("code", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),
    # one row per refused item of a broker message, however often it is delivered (0005)
    Column("message_key", String(64), nullable=False),
    Index("uq_dead_letters_message_key", "consumer", "message_key", unique=True),
)

# (`training_jobs`: MLflow 3 has a `jobs` table, and the two may share a database.)
# One row per training process launched (`store/jobs.py`): queued → running → succeeded|failed.
jobs = Table(
    "training_jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("pipeline", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("trigger_key", String(300), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("log_path", Text, nullable=True),
    Column("host", String(200), nullable=True),
    Column("pid", Integer, nullable=True),
    Column("message", Text, nullable=False, default=""),
    Column("result", JSON, nullable=True),
    Column("reported_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("pipeline", "trigger_key", "attempt", name="uq_training_jobs_attempt"),
)
