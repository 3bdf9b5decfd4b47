"""manifest_blob indexed by (repository, blob)

Revision ID: 0014_manifest_blob_repo_blob
Revises: 0013_proxy_cache
Create Date: 2026-12-06 02:00:00
"""

from alembic import op

revision = "0014_manifest_blob_repo_blob"
down_revision = "0013_proxy_cache"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The composite index serves every lookup the repository_id index served.
    op.create_index(
        "ix_manifest_blob_repository_blob", "manifest_blob", ["repository_id", "blob_id"]
    )
    op.drop_index("ix_manifest_blob_repository_id", table_name="manifest_blob")


def downgrade() -> None:
    op.create_index("ix_manifest_blob_repository_id", "manifest_blob", ["repository_id"])
    op.drop_index("ix_manifest_blob_repository_blob", table_name="manifest_blob")
