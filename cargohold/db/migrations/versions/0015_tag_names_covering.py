"""tag (repository, name, end) index covers hidden too

Revision ID: 0015_tag_names_covering
Revises: 0014_manifest_blob_repo_blob
Create Date: 2026-12-06 03:00:00
"""

from alembic import op

revision = "0015_tag_names_covering"
down_revision = "0014_manifest_blob_repo_blob"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A tag listing reads every visible alive name of a repository: with `hidden` in the index
    # it never visits the table rows.
    op.create_index(
        "ix_tag_repository_name_end_hidden",
        "tag",
        ["repository_id", "name", "lifetime_end_ms", "hidden"],
    )
    op.drop_index("ix_tag_repository_name_end", table_name="tag")


def downgrade() -> None:
    op.create_index(
        "ix_tag_repository_name_end", "tag", ["repository_id", "name", "lifetime_end_ms"]
    )
    op.drop_index("ix_tag_repository_name_end_hidden", table_name="tag")
