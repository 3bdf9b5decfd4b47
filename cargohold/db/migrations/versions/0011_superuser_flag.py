"""Superusers flagged in the database, visible to running servers

Revision ID: 0011_superuser_flag
Revises: 0010_oauth_grants
Create Date: 2026-12-05 01:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_superuser_flag"
down_revision = "0010_oauth_grants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch rebuild of "user" on SQLite would drop the table, and with
    # foreign keys on, every row that cascades from it.
    op.add_column(
        "user", sa.Column("superuser", sa.Boolean(), server_default=sa.false(), nullable=False)
    )


def downgrade() -> None:
    op.drop_column("user", "superuser")
