"""failed-login counters on accounts for the login back-off

Revision ID: 0004_login_failure_backoff
Revises: 0003_repository_notifications
Create Date: 2026-12-04 21:40:00
"""

import sqlalchemy as sa
from alembic import op

import cargohold.db.base

revision = "0004_login_failure_backoff"
down_revision = "0003_repository_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.add_column(
            sa.Column("invalid_login_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("last_invalid_login", cargohold.db.base.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("user") as batch:
        batch.drop_column("last_invalid_login")
        batch.drop_column("invalid_login_attempts")
