"""auto-prune and immutability policies of namespaces and repositories

Revision ID: 0007_tag_policies
Revises: 0006_tag_size_layers_only
Create Date: 2026-12-04 22:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_tag_policies"
down_revision = "0006_tag_size_layers_only"
branch_labels = None
depends_on = None

# (table, owner column, owner table)
POLICY_TABLES = (
    ("namespace_autoprune_policy", "namespace_id", "user"),
    ("repository_autoprune_policy", "repository_id", "repository"),
    ("namespace_immutability_policy", "namespace_id", "user"),
    ("repository_immutability_policy", "repository_id", "repository"),
)


def _create_policy_table(table: str, owner_column: str, owner_table: str) -> None:
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column(owner_column, sa.Integer(), nullable=False),
        sa.Column("policy_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            [owner_column],
            [f"{owner_table}.id"],
            name=op.f(f"fk_{table}_{owner_column}_{owner_table}"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        sa.UniqueConstraint("uuid", name=op.f(f"uq_{table}_uuid")),
    )
    op.create_index(op.f(f"ix_{table}_{owner_column}"), table, [owner_column], unique=False)


def upgrade() -> None:
    for table, owner_column, owner_table in POLICY_TABLES:
        _create_policy_table(table, owner_column, owner_table)


def downgrade() -> None:
    for table, owner_column, _owner_table in reversed(POLICY_TABLES):
        op.drop_index(op.f(f"ix_{table}_{owner_column}"), table_name=table)
        op.drop_table(table)
