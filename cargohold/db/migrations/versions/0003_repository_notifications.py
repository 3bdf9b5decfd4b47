"""repository notifications, their per-tag bookkeeping and authorized e-mail addresses

Revision ID: 0003_repository_notifications
Revises: 0002
Create Date: 2026-12-04 21:50:00
"""

import sqlalchemy as sa
from alembic import op

import cargohold.db.base

revision = "0003_repository_notifications"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repository_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("config_json", sa.Text(), nullable=False),
        sa.Column("event_config_json", sa.Text(), nullable=False),
        sa.Column("number_of_failures", sa.Integer(), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_repository_notification_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repository_notification")),
        sa.UniqueConstraint("uuid", name=op.f("uq_repository_notification_uuid")),
    )
    op.create_index(
        "ix_repository_notification_repo_event",
        "repository_notification",
        ["repository_id", "event"],
        unique=False,
    )
    op.create_table(
        "tag_notification_sent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["repository_notification.id"],
            name=op.f("fk_tag_notification_sent_notification_id_repository_notification"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"],
            ["tag.id"],
            name=op.f("fk_tag_notification_sent_tag_id_tag"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_notification_sent")),
        sa.UniqueConstraint(
            "notification_id",
            "tag_id",
            name=op.f("uq_tag_notification_sent_notification_id_tag_id"),
        ),
    )
    op.create_index(
        op.f("ix_tag_notification_sent_tag_id"), "tag_notification_sent", ["tag_id"], unique=False
    )
    op.create_table(
        "repository_authorized_email",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_repository_authorized_email_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repository_authorized_email")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_repository_authorized_email_code_hash")),
        sa.UniqueConstraint(
            "repository_id",
            "email",
            name=op.f("uq_repository_authorized_email_repository_id_email"),
        ),
    )


def downgrade() -> None:
    op.drop_table("repository_authorized_email")
    op.drop_index(op.f("ix_tag_notification_sent_tag_id"), table_name="tag_notification_sent")
    op.drop_table("tag_notification_sent")
    op.drop_index("ix_repository_notification_repo_event", table_name="repository_notification")
    op.drop_table("repository_notification")
