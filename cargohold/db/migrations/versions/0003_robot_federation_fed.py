"""robot OIDC federation settings

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 22:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("robot_account_token", sa.Column("federation_config", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("robot_account_token", "federation_config")
