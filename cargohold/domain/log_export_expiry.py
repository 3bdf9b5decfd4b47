"""Expired audit-log exports: the file leaves the store and the record the database."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cargohold.domain import log_export
from cargohold.storage.base import BlobStore


def drop_expired(session: Session, store: BlobStore) -> None:
    """Remove one batch of exports whose download window has closed, and commit."""
    for record in log_export.expired(session):
        if record.digest is not None:
            store.delete_blob(record.digest)
        session.delete(record)
    session.commit()
