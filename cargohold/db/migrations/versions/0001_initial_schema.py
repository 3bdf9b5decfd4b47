"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 11:55:05.050363
"""

import sqlalchemy as sa
from alembic import op

import cargohold.db.base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=255), nullable=True),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blob")),
        sa.UniqueConstraint("digest", name=op.f("uq_blob_digest")),
    )
    op.create_index(op.f("ix_blob_created"), "blob", ["created"], unique=False)
    op.create_table(
        "log_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("performer_id", sa.Integer(), nullable=True),
        sa.Column("repository_id", sa.Integer(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("datetime", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_entry")),
    )
    op.create_index(
        "ix_log_entry_account_datetime", "log_entry", ["account_id", "datetime"], unique=False
    )
    op.create_index("ix_log_entry_datetime", "log_entry", ["datetime"], unique=False)
    op.create_index(
        "ix_log_entry_performer_datetime", "log_entry", ["performer_id", "datetime"], unique=False
    )
    op.create_index(
        "ix_log_entry_repository_datetime", "log_entry", ["repository_id", "datetime"], unique=False
    )
    op.create_table(
        "queue_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_name", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("available_after", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("processing_expires", cargohold.db.base.UTCDateTime(), nullable=True),
        sa.Column("retries_remaining", sa.Integer(), nullable=False),
        sa.Column("state_id", sa.String(length=36), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_item")),
    )
    op.create_index(
        "ix_queue_item_claim",
        "queue_item",
        ["queue_name", "available", "available_after"],
        unique=False,
    )
    op.create_table(
        "quota_registry_size",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.Column("queued", sa.Boolean(), nullable=False),
        sa.Column("completed_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_registry_size")),
    )
    op.create_table(
        "user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("organization", sa.Boolean(), nullable=False),
        sa.Column("robot", sa.Boolean(), nullable=False),
        sa.Column("invoice_email", sa.Boolean(), nullable=False),
        sa.Column("invoice_email_address", sa.String(length=255), nullable=True),
        sa.Column("tag_expiration_s", sa.Integer(), nullable=False),
        sa.Column("given_name", sa.String(length=255), nullable=True),
        sa.Column("family_name", sa.String(length=255), nullable=True),
        sa.Column("company", sa.String(length=255), nullable=True),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("creation_date", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("last_accessed", cargohold.db.base.UTCDateTime(), nullable=True),
        sa.Column("session_token", sa.String(length=36), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.CheckConstraint("NOT (organization AND robot)", name=op.f("ck_user_org_or_robot")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user")),
        sa.UniqueConstraint("username", name=op.f("uq_user_username")),
        sa.UniqueConstraint("uuid", name=op.f("uq_user_uuid")),
    )
    op.create_index(
        "ix_user_email_unique",
        "user",
        ["email"],
        unique=True,
        sqlite_where=sa.text("NOT organization"),
        postgresql_where=sa.text("NOT organization"),
    )
    op.create_table(
        "user_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("mime_type", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=255), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_file")),
        sa.UniqueConstraint("uuid", name=op.f("uq_user_file_uuid")),
    )
    op.create_table(
        "app_specific_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("token_name", sa.String(length=60), nullable=False),
        sa.Column("token_secret_hash", sa.String(length=128), nullable=False),
        sa.Column("token_secret_encrypted", sa.Text(), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("expiration", cargohold.db.base.UTCDateTime(), nullable=True),
        sa.Column("last_accessed", cargohold.db.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_app_specific_token_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_specific_token")),
        sa.UniqueConstraint("token_name", name=op.f("uq_app_specific_token_token_name")),
        sa.UniqueConstraint("uuid", name=op.f("uq_app_specific_token_uuid")),
    )
    op.create_index(
        op.f("ix_app_specific_token_user_id"), "app_specific_token", ["user_id"], unique=False
    )
    op.create_table(
        "deleted_namespace",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace_id", sa.Integer(), nullable=False),
        sa.Column("original_username", sa.String(length=255), nullable=False),
        sa.Column("original_email", sa.String(length=255), nullable=True),
        sa.Column("marked", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("queue_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["namespace_id"],
            ["user.id"],
            name=op.f("fk_deleted_namespace_namespace_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deleted_namespace")),
        sa.UniqueConstraint("namespace_id", name=op.f("uq_deleted_namespace_namespace_id")),
        sa.UniqueConstraint(
            "original_username", name=op.f("uq_deleted_namespace_original_username")
        ),
    )
    op.create_table(
        "namespace_quota",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace_id", sa.Integer(), nullable=False),
        sa.Column("limit_bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["namespace_id"],
            ["user.id"],
            name=op.f("fk_namespace_quota_namespace_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_namespace_quota")),
        sa.UniqueConstraint("namespace_id", name=op.f("uq_namespace_quota_namespace_id")),
    )
    op.create_table(
        "oauth_application",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=20), nullable=False),
        sa.Column("client_secret_encrypted", sa.Text(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("application_uri", sa.String(length=255), nullable=False),
        sa.Column("redirect_uri", sa.String(length=255), nullable=False),
        sa.Column("avatar_email", sa.String(length=255), nullable=True),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["user.id"],
            name=op.f("fk_oauth_application_organization_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_application")),
        sa.UniqueConstraint("client_id", name=op.f("uq_oauth_application_client_id")),
    )
    op.create_table(
        "quota_namespace_size",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace_id", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("backfill_start_ms", sa.BigInteger(), nullable=True),
        sa.Column("backfill_complete", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["namespace_id"],
            ["user.id"],
            name=op.f("fk_quota_namespace_size_namespace_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_namespace_size")),
        sa.UniqueConstraint("namespace_id", name=op.f("uq_quota_namespace_size_namespace_id")),
    )
    op.create_table(
        "repository",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace_user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("trust_enabled", sa.Boolean(), nullable=False),
        sa.Column("badge_token", sa.String(length=36), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("last_modified", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["namespace_user_id"],
            ["user.id"],
            name=op.f("fk_repository_namespace_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repository")),
        sa.UniqueConstraint(
            "namespace_user_id", "name", name=op.f("uq_repository_namespace_user_id_name")
        ),
    )
    op.create_index(op.f("ix_repository_deleted"), "repository", ["deleted"], unique=False)
    op.create_table(
        "robot_account_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("robot_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        sa.Column("token_encrypted", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("unstructured_metadata", sa.Text(), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("last_accessed", cargohold.db.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["robot_id"],
            ["user.id"],
            name=op.f("fk_robot_account_token_robot_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_robot_account_token")),
        sa.UniqueConstraint("robot_id", name=op.f("uq_robot_account_token_robot_id")),
    )
    op.create_table(
        "service_key_approval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("approver_id", sa.Integer(), nullable=True),
        sa.Column("approval_type", sa.String(length=64), nullable=False),
        sa.Column("approved_date", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["approver_id"],
            ["user.id"],
            name=op.f("fk_service_key_approval_approver_id_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_key_approval")),
    )
    op.create_table(
        "team",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum("member", "creator", "admin", name="teamrole", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["user.id"],
            name=op.f("fk_team_organization_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team")),
        sa.UniqueConstraint("organization_id", "name", name=op.f("uq_team_organization_id_name")),
    )
    op.create_table(
        "user_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=True),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("dismissed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["user.id"],
            name=op.f("fk_user_notification_target_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_notification")),
        sa.UniqueConstraint("uuid", name=op.f("uq_user_notification_uuid")),
    )
    op.create_index(
        op.f("ix_user_notification_target_id"), "user_notification", ["target_id"], unique=False
    )
    op.create_table(
        "blob_upload",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("byte_count", sa.BigInteger(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("storage_metadata", sa.Text(), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_blob_upload_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blob_upload")),
        sa.UniqueConstraint("uuid", name=op.f("uq_blob_upload_uuid")),
    )
    op.create_index(op.f("ix_blob_upload_created"), "blob_upload", ["created"], unique=False)
    op.create_index(
        op.f("ix_blob_upload_repository_id"), "blob_upload", ["repository_id"], unique=False
    )
    op.create_table(
        "build_trigger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("service", sa.String(length=32), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("connected_user_id", sa.Integer(), nullable=True),
        sa.Column("config_json", sa.Text(), nullable=False),
        sa.Column("auth_token_encrypted", sa.Text(), nullable=True),
        sa.Column("private_key_encrypted", sa.Text(), nullable=True),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("write_token_hash", sa.String(length=128), nullable=True),
        sa.Column("write_token_encrypted", sa.Text(), nullable=True),
        sa.Column("pull_robot_id", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=64), nullable=True),
        sa.Column("disabled_datetime", cargohold.db.base.UTCDateTime(), nullable=True),
        sa.Column("successive_failure_count", sa.Integer(), nullable=False),
        sa.Column("successive_internal_error_count", sa.Integer(), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connected_user_id"],
            ["user.id"],
            name=op.f("fk_build_trigger_connected_user_id_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["pull_robot_id"],
            ["user.id"],
            name=op.f("fk_build_trigger_pull_robot_id_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_build_trigger_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_trigger")),
        sa.UniqueConstraint("uuid", name=op.f("uq_build_trigger_uuid")),
    )
    op.create_index(
        op.f("ix_build_trigger_repository_id"), "build_trigger", ["repository_id"], unique=False
    )
    op.create_table(
        "manifest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=255), nullable=False),
        sa.Column("manifest_bytes", sa.LargeBinary(), nullable=False),
        sa.Column("config_media_type", sa.String(length=255), nullable=True),
        sa.Column("artifact_type", sa.String(length=255), nullable=True),
        sa.Column("subject_digest", sa.String(length=255), nullable=True),
        sa.Column("layers_compressed_size", sa.BigInteger(), nullable=True),
        sa.Column("annotations_json", sa.Text(), nullable=True),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_manifest_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manifest")),
        sa.UniqueConstraint(
            "repository_id", "digest", name=op.f("uq_manifest_repository_id_digest")
        ),
    )
    op.create_index(op.f("ix_manifest_digest"), "manifest", ["digest"], unique=False)
    op.create_index(
        "ix_manifest_subject", "manifest", ["repository_id", "subject_digest"], unique=False
    )
    op.create_table(
        "oauth_access_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=True),
        sa.Column("authorized_user_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=255), nullable=False),
        sa.Column("token_name", sa.String(length=20), nullable=False),
        sa.Column("token_code_hash", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", cargohold.db.base.UTCDateTime(), nullable=True),
        sa.Column("last_accessed", cargohold.db.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["oauth_application.id"],
            name=op.f("fk_oauth_access_token_application_id_oauth_application"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["authorized_user_id"],
            ["user.id"],
            name=op.f("fk_oauth_access_token_authorized_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user.id"],
            name=op.f("fk_oauth_access_token_created_by_id_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_access_token")),
        sa.UniqueConstraint("token_name", name=op.f("uq_oauth_access_token_token_name")),
        sa.UniqueConstraint("uuid", name=op.f("uq_oauth_access_token_uuid")),
    )
    op.create_index(
        op.f("ix_oauth_access_token_application_id"),
        "oauth_access_token",
        ["application_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_oauth_access_token_authorized_user_id"),
        "oauth_access_token",
        ["authorized_user_id"],
        unique=False,
    )
    op.create_table(
        "permission_prototype",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("activating_user_id", sa.Integer(), nullable=True),
        sa.Column("delegate_user_id", sa.Integer(), nullable=True),
        sa.Column("delegate_team_id", sa.Integer(), nullable=True),
        sa.Column(
            "role",
            sa.Enum("read", "write", "admin", name="role", native_enum=False, length=16),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(delegate_user_id IS NULL) <> (delegate_team_id IS NULL)",
            name=op.f("ck_permission_prototype_one_delegate"),
        ),
        sa.ForeignKeyConstraint(
            ["activating_user_id"],
            ["user.id"],
            name=op.f("fk_permission_prototype_activating_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["delegate_team_id"],
            ["team.id"],
            name=op.f("fk_permission_prototype_delegate_team_id_team"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["delegate_user_id"],
            ["user.id"],
            name=op.f("fk_permission_prototype_delegate_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["user.id"],
            name=op.f("fk_permission_prototype_organization_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_permission_prototype")),
        sa.UniqueConstraint("uuid", name=op.f("uq_permission_prototype_uuid")),
    )
    op.create_index(
        op.f("ix_permission_prototype_activating_user_id"),
        "permission_prototype",
        ["activating_user_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_permission_prototype_delegate_team_id"),
        "permission_prototype",
        ["delegate_team_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_permission_prototype_delegate_user_id"),
        "permission_prototype",
        ["delegate_user_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_permission_prototype_organization_id"),
        "permission_prototype",
        ["organization_id"],
        unique=False,
    )
    op.create_table(
        "quota_limit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("quota_id", sa.Integer(), nullable=False),
        sa.Column(
            "limit_type",
            sa.Enum("Warning", "Reject", name="quotalimittype", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("percent_of_limit", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["quota_id"],
            ["namespace_quota.id"],
            name=op.f("fk_quota_limit_quota_id_namespace_quota"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_limit")),
    )
    op.create_index(op.f("ix_quota_limit_quota_id"), "quota_limit", ["quota_id"], unique=False)
    op.create_table(
        "quota_repository_size",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("backfill_start_ms", sa.BigInteger(), nullable=True),
        sa.Column("backfill_complete", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_quota_repository_size_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_repository_size")),
        sa.UniqueConstraint("repository_id", name=op.f("uq_quota_repository_size_repository_id")),
    )
    op.create_table(
        "repo_mirror_config",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("robot_id", sa.Integer(), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=False),
        sa.Column("mirror_type", sa.String(length=16), nullable=False),
        sa.Column("external_reference", sa.String(length=1024), nullable=False),
        sa.Column("username_encrypted", sa.Text(), nullable=True),
        sa.Column("password_encrypted", sa.Text(), nullable=True),
        sa.Column("external_registry_config", sa.Text(), nullable=False),
        sa.Column("sync_interval", sa.Integer(), nullable=False),
        sa.Column("sync_start_date", cargohold.db.base.UTCDateTime(), nullable=True),
        sa.Column("sync_expiration_date", cargohold.db.base.UTCDateTime(), nullable=True),
        sa.Column("sync_retries_remaining", sa.Integer(), nullable=False),
        sa.Column(
            "sync_status",
            sa.Enum(
                "NEVER_RUN",
                "SYNC_NOW",
                "SYNCING",
                "SUCCESS",
                "FAIL",
                "CANCEL",
                name="syncstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("sync_transaction_id", sa.String(length=36), nullable=False),
        sa.Column("rule_kind", sa.String(length=32), nullable=False),
        sa.Column("rule_value", sa.Text(), nullable=False),
        sa.Column("skopeo_timeout_interval", sa.Integer(), nullable=False),
        sa.Column("architecture_filter", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_repo_mirror_config_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["robot_id"],
            ["user.id"],
            name=op.f("fk_repo_mirror_config_robot_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repo_mirror_config")),
        sa.UniqueConstraint("repository_id", name=op.f("uq_repo_mirror_config_repository_id")),
    )
    op.create_index(
        op.f("ix_repo_mirror_config_robot_id"), "repo_mirror_config", ["robot_id"], unique=False
    )
    op.create_index(
        op.f("ix_repo_mirror_config_sync_start_date"),
        "repo_mirror_config",
        ["sync_start_date"],
        unique=False,
    )
    op.create_table(
        "repository_blob",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("blob_id", sa.Integer(), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", cargohold.db.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["blob_id"],
            ["blob.id"],
            name=op.f("fk_repository_blob_blob_id_blob"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_repository_blob_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repository_blob")),
        sa.UniqueConstraint(
            "repository_id", "blob_id", name=op.f("uq_repository_blob_repository_id_blob_id")
        ),
    )
    op.create_index(
        op.f("ix_repository_blob_blob_id"), "repository_blob", ["blob_id"], unique=False
    )
    op.create_index(
        op.f("ix_repository_blob_expires_at"), "repository_blob", ["expires_at"], unique=False
    )
    op.create_table(
        "repository_permission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column(
            "role",
            sa.Enum("read", "write", "admin", name="role", native_enum=False, length=16),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_repository_permission_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["team.id"],
            name=op.f("fk_repository_permission_team_id_team"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_repository_permission_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repository_permission")),
    )
    op.create_index(
        "ix_repository_permission_team",
        "repository_permission",
        ["repository_id", "team_id"],
        unique=True,
        sqlite_where=sa.text("team_id IS NOT NULL"),
        postgresql_where=sa.text("team_id IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_repository_permission_team_id"), "repository_permission", ["team_id"], unique=False
    )
    op.create_index(
        "ix_repository_permission_user",
        "repository_permission",
        ["repository_id", "user_id"],
        unique=True,
        sqlite_where=sa.text("user_id IS NOT NULL"),
        postgresql_where=sa.text("user_id IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_repository_permission_user_id"), "repository_permission", ["user_id"], unique=False
    )
    op.create_table(
        "service_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=255), nullable=False),
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("jwk_json", sa.Text(), nullable=False),
        sa.Column("metadata_json", sa.Text(), nullable=False),
        sa.Column("created_date", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("expiration_date", cargohold.db.base.UTCDateTime(), nullable=True),
        sa.Column("rotation_duration", sa.Integer(), nullable=True),
        sa.Column("approval_id", sa.Integer(), nullable=True),
        sa.Column("private_key_encrypted", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["approval_id"],
            ["service_key_approval.id"],
            name=op.f("fk_service_key_approval_id_service_key_approval"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_key")),
        sa.UniqueConstraint("kid", name=op.f("uq_service_key_kid")),
    )
    op.create_index(op.f("ix_service_key_service"), "service_key", ["service"], unique=False)
    op.create_table(
        "star",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_star_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_star_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_star")),
        sa.UniqueConstraint("user_id", "repository_id", name=op.f("uq_star_user_id_repository_id")),
    )
    op.create_index(op.f("ix_star_repository_id"), "star", ["repository_id"], unique=False)
    op.create_table(
        "team_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_team_member_team_id_team"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_team_member_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_member")),
        sa.UniqueConstraint("team_id", "user_id", name=op.f("uq_team_member_team_id_user_id")),
    )
    op.create_index(op.f("ix_team_member_user_id"), "team_member", ["user_id"], unique=False)
    op.create_table(
        "team_member_invite",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("inviter_id", sa.Integer(), nullable=True),
        sa.Column("invite_token_hash", sa.String(length=128), nullable=False),
        sa.Column("created", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["inviter_id"],
            ["user.id"],
            name=op.f("fk_team_member_invite_inviter_id_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["team.id"],
            name=op.f("fk_team_member_invite_team_id_team"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_team_member_invite_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_member_invite")),
        sa.UniqueConstraint(
            "invite_token_hash", name=op.f("uq_team_member_invite_invite_token_hash")
        ),
    )
    op.create_index(
        op.f("ix_team_member_invite_team_id"), "team_member_invite", ["team_id"], unique=False
    )
    op.create_table(
        "manifest_blob",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("manifest_id", sa.Integer(), nullable=False),
        sa.Column("blob_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["blob_id"],
            ["blob.id"],
            name=op.f("fk_manifest_blob_blob_id_blob"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["manifest_id"],
            ["manifest.id"],
            name=op.f("fk_manifest_blob_manifest_id_manifest"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_manifest_blob_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manifest_blob")),
        sa.UniqueConstraint(
            "manifest_id", "blob_id", name=op.f("uq_manifest_blob_manifest_id_blob_id")
        ),
    )
    op.create_index(op.f("ix_manifest_blob_blob_id"), "manifest_blob", ["blob_id"], unique=False)
    op.create_index(
        op.f("ix_manifest_blob_repository_id"), "manifest_blob", ["repository_id"], unique=False
    )
    op.create_table(
        "manifest_child",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("manifest_id", sa.Integer(), nullable=False),
        sa.Column("child_manifest_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_manifest_id"],
            ["manifest.id"],
            name=op.f("fk_manifest_child_child_manifest_id_manifest"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["manifest_id"],
            ["manifest.id"],
            name=op.f("fk_manifest_child_manifest_id_manifest"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_manifest_child_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manifest_child")),
        sa.UniqueConstraint(
            "manifest_id",
            "child_manifest_id",
            name=op.f("uq_manifest_child_manifest_id_child_manifest_id"),
        ),
    )
    op.create_index(
        op.f("ix_manifest_child_child_manifest_id"),
        "manifest_child",
        ["child_manifest_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_manifest_child_repository_id"), "manifest_child", ["repository_id"], unique=False
    )
    op.create_table(
        "manifest_label",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("manifest_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["manifest_id"],
            ["manifest.id"],
            name=op.f("fk_manifest_label_manifest_id_manifest"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_manifest_label_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_manifest_label")),
        sa.UniqueConstraint("uuid", name=op.f("uq_manifest_label_uuid")),
    )
    op.create_index(
        op.f("ix_manifest_label_manifest_id"), "manifest_label", ["manifest_id"], unique=False
    )
    op.create_index(
        op.f("ix_manifest_label_repository_id"), "manifest_label", ["repository_id"], unique=False
    )
    op.create_table(
        "repository_build",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("started", cargohold.db.base.UTCDateTime(), nullable=False),
        sa.Column("completed", cargohold.db.base.UTCDateTime(), nullable=True),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("job_config_json", sa.Text(), nullable=False),
        sa.Column("trigger_id", sa.Integer(), nullable=True),
        sa.Column("pull_robot_id", sa.Integer(), nullable=True),
        sa.Column("resource_key", sa.String(length=255), nullable=True),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("logs_archived", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pull_robot_id"],
            ["user.id"],
            name=op.f("fk_repository_build_pull_robot_id_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_repository_build_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trigger_id"],
            ["build_trigger.id"],
            name=op.f("fk_repository_build_trigger_id_build_trigger"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repository_build")),
        sa.UniqueConstraint("uuid", name=op.f("uq_repository_build_uuid")),
    )
    op.create_index("ix_repository_build_phase", "repository_build", ["phase"], unique=False)
    op.create_index(
        "ix_repository_build_repository_started",
        "repository_build",
        ["repository_id", "started"],
        unique=False,
    )
    op.create_index(
        "ix_repository_build_trigger_started",
        "repository_build",
        ["trigger_id", "started"],
        unique=False,
    )
    op.create_table(
        "tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("manifest_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("lifetime_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("lifetime_end_ms", sa.BigInteger(), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("reversion", sa.Boolean(), nullable=False),
        sa.Column("immutable", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["manifest_id"],
            ["manifest.id"],
            name=op.f("fk_tag_manifest_id_manifest"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repository.id"],
            name=op.f("fk_tag_repository_id_repository"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag")),
    )
    op.create_index(
        "ix_tag_alive",
        "tag",
        ["repository_id", "name"],
        unique=True,
        sqlite_where=sa.text("lifetime_end_ms IS NULL"),
        postgresql_where=sa.text("lifetime_end_ms IS NULL"),
    )
    op.create_index(
        "ix_tag_history_order",
        "tag",
        [
            "repository_id",
            "hidden",
            sa.literal_column("lifetime_start_ms DESC"),
            "name",
            sa.literal_column("id DESC"),
        ],
        unique=False,
    )
    op.create_index("ix_tag_lifetime_end", "tag", ["lifetime_end_ms"], unique=False)
    op.create_index(op.f("ix_tag_manifest_id"), "tag", ["manifest_id"], unique=False)
    op.create_index(
        "ix_tag_repository_name_end",
        "tag",
        ["repository_id", "name", "lifetime_end_ms"],
        unique=False,
    )
    op.create_table(
        "build_log_entry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("build_id", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=True),
        sa.Column("data_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["build_id"],
            ["repository_build.id"],
            name=op.f("fk_build_log_entry_build_id_repository_build"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_log_entry")),
    )
    op.create_index("ix_build_log_entry_build", "build_log_entry", ["build_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_build_log_entry_build", table_name="build_log_entry")
    op.drop_table("build_log_entry")
    op.drop_index("ix_tag_repository_name_end", table_name="tag")
    op.drop_index(op.f("ix_tag_manifest_id"), table_name="tag")
    op.drop_index("ix_tag_lifetime_end", table_name="tag")
    op.drop_index("ix_tag_history_order", table_name="tag")
    op.drop_index(
        "ix_tag_alive",
        table_name="tag",
        sqlite_where=sa.text("lifetime_end_ms IS NULL"),
        postgresql_where=sa.text("lifetime_end_ms IS NULL"),
    )
    op.drop_table("tag")
    op.drop_index("ix_repository_build_trigger_started", table_name="repository_build")
    op.drop_index("ix_repository_build_repository_started", table_name="repository_build")
    op.drop_index("ix_repository_build_phase", table_name="repository_build")
    op.drop_table("repository_build")
    op.drop_index(op.f("ix_manifest_label_repository_id"), table_name="manifest_label")
    op.drop_index(op.f("ix_manifest_label_manifest_id"), table_name="manifest_label")
    op.drop_table("manifest_label")
    op.drop_index(op.f("ix_manifest_child_repository_id"), table_name="manifest_child")
    op.drop_index(op.f("ix_manifest_child_child_manifest_id"), table_name="manifest_child")
    op.drop_table("manifest_child")
    op.drop_index(op.f("ix_manifest_blob_repository_id"), table_name="manifest_blob")
    op.drop_index(op.f("ix_manifest_blob_blob_id"), table_name="manifest_blob")
    op.drop_table("manifest_blob")
    op.drop_index(op.f("ix_team_member_invite_team_id"), table_name="team_member_invite")
    op.drop_table("team_member_invite")
    op.drop_index(op.f("ix_team_member_user_id"), table_name="team_member")
    op.drop_table("team_member")
    op.drop_index(op.f("ix_star_repository_id"), table_name="star")
    op.drop_table("star")
    op.drop_index(op.f("ix_service_key_service"), table_name="service_key")
    op.drop_table("service_key")
    op.drop_index(op.f("ix_repository_permission_user_id"), table_name="repository_permission")
    op.drop_index(
        "ix_repository_permission_user",
        table_name="repository_permission",
        sqlite_where=sa.text("user_id IS NOT NULL"),
        postgresql_where=sa.text("user_id IS NOT NULL"),
    )
    op.drop_index(op.f("ix_repository_permission_team_id"), table_name="repository_permission")
    op.drop_index(
        "ix_repository_permission_team",
        table_name="repository_permission",
        sqlite_where=sa.text("team_id IS NOT NULL"),
        postgresql_where=sa.text("team_id IS NOT NULL"),
    )
    op.drop_table("repository_permission")
    op.drop_index(op.f("ix_repository_blob_expires_at"), table_name="repository_blob")
    op.drop_index(op.f("ix_repository_blob_blob_id"), table_name="repository_blob")
    op.drop_table("repository_blob")
    op.drop_index(op.f("ix_repo_mirror_config_sync_start_date"), table_name="repo_mirror_config")
    op.drop_index(op.f("ix_repo_mirror_config_robot_id"), table_name="repo_mirror_config")
    op.drop_table("repo_mirror_config")
    op.drop_table("quota_repository_size")
    op.drop_index(op.f("ix_quota_limit_quota_id"), table_name="quota_limit")
    op.drop_table("quota_limit")
    op.drop_index(
        op.f("ix_permission_prototype_organization_id"), table_name="permission_prototype"
    )
    op.drop_index(
        op.f("ix_permission_prototype_delegate_user_id"), table_name="permission_prototype"
    )
    op.drop_index(
        op.f("ix_permission_prototype_delegate_team_id"), table_name="permission_prototype"
    )
    op.drop_index(
        op.f("ix_permission_prototype_activating_user_id"), table_name="permission_prototype"
    )
    op.drop_table("permission_prototype")
    op.drop_index(op.f("ix_oauth_access_token_authorized_user_id"), table_name="oauth_access_token")
    op.drop_index(op.f("ix_oauth_access_token_application_id"), table_name="oauth_access_token")
    op.drop_table("oauth_access_token")
    op.drop_index("ix_manifest_subject", table_name="manifest")
    op.drop_index(op.f("ix_manifest_digest"), table_name="manifest")
    op.drop_table("manifest")
    op.drop_index(op.f("ix_build_trigger_repository_id"), table_name="build_trigger")
    op.drop_table("build_trigger")
    op.drop_index(op.f("ix_blob_upload_repository_id"), table_name="blob_upload")
    op.drop_index(op.f("ix_blob_upload_created"), table_name="blob_upload")
    op.drop_table("blob_upload")
    op.drop_index(op.f("ix_user_notification_target_id"), table_name="user_notification")
    op.drop_table("user_notification")
    op.drop_table("team")
    op.drop_table("service_key_approval")
    op.drop_table("robot_account_token")
    op.drop_index(op.f("ix_repository_deleted"), table_name="repository")
    op.drop_table("repository")
    op.drop_table("quota_namespace_size")
    op.drop_table("oauth_application")
    op.drop_table("namespace_quota")
    op.drop_table("deleted_namespace")
    op.drop_index(op.f("ix_app_specific_token_user_id"), table_name="app_specific_token")
    op.drop_table("app_specific_token")
    op.drop_table("user_file")
    op.drop_index(
        "ix_user_email_unique",
        table_name="user",
        sqlite_where=sa.text("NOT organization"),
        postgresql_where=sa.text("NOT organization"),
    )
    op.drop_table("user")
    op.drop_table("quota_registry_size")
    op.drop_index("ix_queue_item_claim", table_name="queue_item")
    op.drop_table("queue_item")
    op.drop_index("ix_log_entry_repository_datetime", table_name="log_entry")
    op.drop_index("ix_log_entry_performer_datetime", table_name="log_entry")
    op.drop_index("ix_log_entry_datetime", table_name="log_entry")
    op.drop_index("ix_log_entry_account_datetime", table_name="log_entry")
    op.drop_table("log_entry")
    op.drop_index(op.f("ix_blob_created"), table_name="blob")
    op.drop_table("blob")
