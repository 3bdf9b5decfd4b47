"""email confirmation codes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 12:02:00
"""

import sqlalchemy as sa
from alembic import op

import cargohold.db.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_confirmation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=128), nullable=False),
        sa.Column("new_email", sa.String(length=255), nullable=True),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_email_confirmation_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_confirmation")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_email_confirmation_code_hash")),
    )
    op.create_index(
        op.f("ix_email_confirmation_user_id"), "email_confirmation", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_email_confirmation_user_id"), table_name="email_confirmation")
    op.drop_table("email_confirmation")
