"""dead letters recorded once: a key per refused item of a broker message

Revision ID: 0005
Revises: 0004

A message redelivered after a crash before its ack is refused again; the key (the broker's
message id, or the message's sha256, with the refused item's hash) makes the second write a
no-op. Rows written before this revision get a key of their own (`legacy:<id>`).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("message_key", sa.String(length=64), nullable=True))
    op.execute("UPDATE dead_letters SET message_key = 'legacy:' || CAST(id AS VARCHAR(20))")
    with op.batch_alter_table("dead_letters") as batch:
        batch.alter_column("message_key", existing_type=sa.String(length=64), nullable=False)
    op.create_index(
        "uq_dead_letters_message_key", "dead_letters", ["consumer", "message_key"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_dead_letters_message_key", "dead_letters")
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("message_key")
