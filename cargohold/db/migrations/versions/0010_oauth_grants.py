"""OAuth token assignments and authorization codes

Revision ID: 0010_oauth_grants
Revises: 0009_robot_federation
Create Date: 2026-12-04 22:10:00
"""

import sqlalchemy as sa
from alembic import op

import cargohold.db.base

revision = "0010_oauth_grants"
down_revision = "0009_robot_federation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_assigned_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("assigned_user_id", sa.Integer(), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(length=255), nullable=False),
        sa.Column("response_type", sa.String(length=255), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["oauth_application.id"],
            name=op.f("fk_oauth_assigned_token_application_id_oauth_application"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["assigned_user_id"],
            ["user.id"],
            name=op.f("fk_oauth_assigned_token_assigned_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_assigned_token")),
        sa.UniqueConstraint("uuid", name=op.f("uq_oauth_assigned_token_uuid")),
    )
    op.create_index(
        op.f("ix_oauth_assigned_token_application_id"),
        "oauth_assigned_token",
        ["application_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_oauth_assigned_token_assigned_user_id"),
        "oauth_assigned_token",
        ["assigned_user_id"],
        unique=False,
    )
    op.create_table(
        "oauth_authorization_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("authorized_user_id", sa.Integer(), nullable=False),
        sa.Column("code_name", sa.String(length=20), nullable=False),
        sa.Column("code_hash", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=255), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["oauth_application.id"],
            name=op.f("fk_oauth_authorization_code_application_id_oauth_application"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["authorized_user_id"],
            ["user.id"],
            name=op.f("fk_oauth_authorization_code_authorized_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_authorization_code")),
        sa.UniqueConstraint("code_name", name=op.f("uq_oauth_authorization_code_code_name")),
    )
    op.create_index(
        op.f("ix_oauth_authorization_code_application_id"),
        "oauth_authorization_code",
        ["application_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_oauth_authorization_code_authorized_user_id"),
        "oauth_authorization_code",
        ["authorized_user_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_oauth_authorization_code_authorized_user_id"),
        table_name="oauth_authorization_code",
    )
    op.drop_index(
        op.f("ix_oauth_authorization_code_application_id"), table_name="oauth_authorization_code"
    )
    op.drop_table("oauth_authorization_code")
    op.drop_index(
        op.f("ix_oauth_assigned_token_assigned_user_id"), table_name="oauth_assigned_token"
    )
    op.drop_index(op.f("ix_oauth_assigned_token_application_id"), table_name="oauth_assigned_token")
    op.drop_table("oauth_assigned_token")
