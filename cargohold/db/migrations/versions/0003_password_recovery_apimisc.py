"""password recovery codes beside email confirmation codes

Revision ID: 0003_password_recovery
Revises: 0003_repository_notifications
Create Date: 2026-12-04 21:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_password_recovery"
down_revision = "0003_repository_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("email_confirmation") as batch:
        batch.add_column(
            sa.Column("pw_reset", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("email_confirmation") as batch:
        batch.drop_column("pw_reset")
