"""global messages

Revision ID: 0005_global_messages
Revises: 0004_login_failure_backoff
Create Date: 2026-12-04 22:00:00
"""

import sqlalchemy as sa
from alembic import op

import cargohold.db.base

revision = "0005_global_messages"
down_revision = "0004_login_failure_backoff"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "global_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_global_message")),
        sa.UniqueConstraint("uuid", name=op.f("uq_global_message_uuid")),
    )


def downgrade() -> None:
    op.drop_table("global_message")
