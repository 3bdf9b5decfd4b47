"""Audit log exports

Revision ID: 0012_log_exports
Revises: 0011_superuser_flag
Create Date: 2026-12-05 01:30:00
"""

import sqlalchemy as sa
from alembic import op

import cargohold.db.base

revision = "0012_log_exports"
down_revision = "0011_superuser_flag"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_export",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("export_id", sa.String(length=36), nullable=False),
        sa.Column("file_key_hash", sa.String(length=64), nullable=True),
        sa.Column("digest", sa.String(length=255), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("expires", cargohold.db.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_export")),
        sa.UniqueConstraint("export_id", name=op.f("uq_log_export_export_id")),
        sa.UniqueConstraint("file_key_hash", name=op.f("uq_log_export_file_key_hash")),
    )
    op.create_index(op.f("ix_log_export_expires"), "log_export", ["expires"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_log_export_expires"), table_name="log_export")
    op.drop_table("log_export")
