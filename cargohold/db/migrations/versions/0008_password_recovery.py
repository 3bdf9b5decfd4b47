"""password recovery codes beside email confirmation codes

Revision ID: 0008_password_recovery
Revises: 0007_tag_policies
Create Date: 2026-12-04 21:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_password_recovery"
down_revision = "0007_tag_policies"
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
