"""Proxy-cache organizations

Revision ID: 0013_proxy_cache
Revises: 0012_log_exports
Create Date: 2026-12-05 01:30:00
"""

import sqlalchemy as sa
from alembic import op

import cargohold.db.base

revision = "0013_proxy_cache"
down_revision = "0012_log_exports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proxy_cache_config",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("upstream_registry", sa.String(length=2048), nullable=False),
        sa.Column("username_encrypted", sa.Text(), nullable=True),
        sa.Column("password_encrypted", sa.Text(), nullable=True),
        sa.Column("expiration_s", sa.Integer(), nullable=False),
        sa.Column("insecure", sa.Boolean(), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["user.id"],
            name=op.f("fk_proxy_cache_config_organization_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proxy_cache_config")),
        sa.UniqueConstraint("organization_id", name=op.f("uq_proxy_cache_config_organization_id")),
    )
    op.create_table(
        "proxy_blob_fetch",
        sa.Column("digest", sa.String(length=255), nullable=False),
        sa.Column("claimed_at", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_proxy_blob_fetch")),
    )


def downgrade() -> None:
    op.drop_table("proxy_blob_fetch")
    op.drop_table("proxy_cache_config")
