"""tag size counts the layers only: take the config blob out of stored manifest sizes

Revision ID: 0006_tag_size_layers_only
Revises: 0005_global_messages
Create Date: 2026-12-04 22:00:00
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0006_tag_size_layers_only"
down_revision = "0005_global_messages"
branch_labels = None
depends_on = None

_manifest = sa.table(
    "manifest",
    sa.column("id", sa.Integer()),
    sa.column("manifest_bytes", sa.LargeBinary()),
    sa.column("layers_compressed_size", sa.BigInteger()),
)


def _sizes(raw: bytes) -> tuple[int, int] | None:
    """(config size, sum of layer sizes) of an image manifest that names a config blob."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    config = document.get("config") if isinstance(document, dict) else None
    layers = document.get("layers") if isinstance(document, dict) else None
    if not isinstance(config, dict) or not isinstance(layers, list):
        return None
    sizes = [config.get("size")] + [
        layer.get("size") for layer in layers if isinstance(layer, dict)
    ]
    if not all(isinstance(size, int) and not isinstance(size, bool) for size in sizes):
        return None
    return sizes[0], sum(sizes[1:])


def _rewrite_sizes(with_config: bool) -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_manifest.c.id, _manifest.c.manifest_bytes).where(
            _manifest.c.layers_compressed_size.is_not(None)
        )
    ).all()
    for manifest_id, raw in rows:
        sizes = _sizes(bytes(raw or b""))
        if sizes is None:
            continue
        config_size, layers_size = sizes
        connection.execute(
            _manifest.update()
            .where(_manifest.c.id == manifest_id)
            .values(layers_compressed_size=layers_size + (config_size if with_config else 0))
        )


def upgrade() -> None:
    _rewrite_sizes(with_config=False)


def downgrade() -> None:
    _rewrite_sizes(with_config=True)
