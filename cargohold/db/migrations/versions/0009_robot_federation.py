"""robot OIDC federation settings

Revision ID: 0009_robot_federation
Revises: 0008_password_recovery
Create Date: 2026-12-04 22:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_robot_federation"
down_revision = "0008_password_recovery"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("robot_account_token", sa.Column("federation_config", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("robot_account_token", "federation_config")
