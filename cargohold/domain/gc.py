"""Garbage collection: what the time machine no longer keeps.

Order matters and each step only removes what nothing still refers to:
1. tag rows ended longer ago than their namespace's window (`tag_expiration_s`; hidden
   temporary rows as soon as they end; immutable rows never),
2. manifests no tag row and no kept manifest list refers to, with their labels and blob links,
3. repository blob links without a manifest using them once their grace period is over,
4. blobs no repository links any more: the row, then the bytes in storage,
and repositories marked deleted are emptied the same way and then removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, case, cast, delete, exists, literal, select, update
from sqlalchemy.orm import Session

from cargohold.config import Settings
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import User
from cargohold.db.models.registry import (
    Blob,
    Manifest,
    ManifestBlob,
    ManifestChild,
    ManifestLabel,
    Repository,
    RepositoryBlob,
    Tag,
)
from cargohold.domain import quota
from cargohold.domain.tags import now_ms
from cargohold.storage.base import BlobStore, StorageError

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class Collected:
    tags: int = 0
    manifests: int = 0
    repositories: int = 0
    blob_digests: list[str] = field(default_factory=list)

    @property
    def anything(self) -> bool:
        return bool(self.tags or self.manifests or self.repositories or self.blob_digests)


def expired_tag_rows(session: Session, at_ms: int) -> dict[int, list[int]]:
    """Tag rows past their namespace's window, by repository (one batch)."""
    window_ms = case(
        (Tag.hidden.is_(True), 0), else_=cast(User.tag_expiration_s, BigInteger) * 1000
    )
    rows = session.execute(
        select(Tag.repository_id, Tag.id)
        .join(Repository, Repository.id == Tag.repository_id)
        .join(User, User.id == Repository.namespace_user_id)
        .where(
            Tag.lifetime_end_ms.is_not(None),
            Tag.immutable.is_(False),
            Tag.lifetime_end_ms <= literal(at_ms, BigInteger) - window_ms,
        )
        .limit(BATCH)
    ).all()
    found: dict[int, list[int]] = {}
    for repository_id, tag_id in rows:
        found.setdefault(repository_id, []).append(tag_id)
    return found


def _unreferenced_manifests(session: Session, repository_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Manifest.id)
            .where(
                Manifest.repository_id == repository_id,
                ~exists().where(Tag.manifest_id == Manifest.id),
                ~exists().where(ManifestChild.child_manifest_id == Manifest.id),
            )
            .limit(BATCH)
        )
    )


def _delete_manifests(session: Session, repository_id: int, manifest_ids: list[int]) -> None:
    """Remove manifests; blobs only they used start their grace period in the repository."""
    blob_ids = set(
        session.scalars(
            select(ManifestBlob.blob_id).where(ManifestBlob.manifest_id.in_(manifest_ids))
        )
    )
    session.execute(delete(ManifestLabel).where(ManifestLabel.manifest_id.in_(manifest_ids)))
    session.execute(delete(ManifestBlob).where(ManifestBlob.manifest_id.in_(manifest_ids)))
    session.execute(delete(ManifestChild).where(ManifestChild.manifest_id.in_(manifest_ids)))
    session.execute(delete(Manifest).where(Manifest.id.in_(manifest_ids)))
    if blob_ids:
        still_used = exists().where(
            ManifestBlob.repository_id == repository_id,
            ManifestBlob.blob_id == RepositoryBlob.blob_id,
        )
        session.execute(
            update(RepositoryBlob)
            .where(
                RepositoryBlob.repository_id == repository_id,
                RepositoryBlob.blob_id.in_(blob_ids),
                RepositoryBlob.expires_at.is_(None),
                ~still_used,
            )
            .values(expires_at=utcnow())
        )


def collect_repository_manifests(session: Session, repository_id: int) -> int:
    """Delete unreferenced manifests, repeating as lists go and free their children."""
    removed = 0
    while True:
        ids = _unreferenced_manifests(session, repository_id)
        if not ids:
            return removed
        _delete_manifests(session, repository_id, ids)
        removed += len(ids)


def collect_blob_links(session: Session) -> None:
    """Repository links to blobs no manifest there uses, once their grace period is over."""
    used = exists().where(
        ManifestBlob.repository_id == RepositoryBlob.repository_id,
        ManifestBlob.blob_id == RepositoryBlob.blob_id,
    )
    session.execute(
        delete(RepositoryBlob).where(
            RepositoryBlob.expires_at.is_not(None), RepositoryBlob.expires_at <= utcnow(), ~used
        )
    )


def orphan_blobs(session: Session) -> list[tuple[int, str]]:
    return list(
        session.execute(
            select(Blob.id, Blob.digest)
            .where(
                ~exists().where(RepositoryBlob.blob_id == Blob.id),
                ~exists().where(ManifestBlob.blob_id == Blob.id),
            )
            .limit(BATCH)
        ).all()
    )


def purge_deleted_repository(session: Session, repository: Repository) -> None:
    """Empty a repository marked deleted, then remove it."""
    session.execute(delete(Tag).where(Tag.repository_id == repository.id))
    collect_repository_manifests(session, repository.id)
    session.execute(delete(RepositoryBlob).where(RepositoryBlob.repository_id == repository.id))
    session.delete(repository)


def collect(session: Session, settings: Settings) -> Collected:
    """One pass; the caller commits, then deletes the returned digests from storage."""
    result = Collected()
    changed: set[int] = set()
    for repository_id, tag_ids in expired_tag_rows(session, now_ms()).items():
        session.execute(delete(Tag).where(Tag.id.in_(tag_ids)))
        result.tags += len(tag_ids)
        removed = collect_repository_manifests(session, repository_id)
        result.manifests += removed
        if removed:
            changed.add(repository_id)
    for repository_id in changed:
        repository = session.get(Repository, repository_id)
        if repository is not None and not repository.deleted:
            quota.record_manifest_change(
                session, settings, repository.namespace_user_id, repository.id
            )
    deleted = session.scalars(
        select(Repository).where(Repository.deleted.is_(True)).limit(10)
    ).all()
    namespaces = {repository.namespace_user_id for repository in deleted}
    for repository in deleted:
        purge_deleted_repository(session, repository)
        result.repositories += 1
    for namespace_id in namespaces:
        quota.record_namespace_change(session, settings, namespace_id)
    collect_blob_links(session)
    session.flush()
    orphans = orphan_blobs(session)
    if orphans:
        session.execute(delete(Blob).where(Blob.id.in_([blob_id for blob_id, _ in orphans])))
        result.blob_digests = [digest for _, digest in orphans]
    return result


def delete_stored_blobs(store: BlobStore, digests: list[str]) -> None:
    """Bytes go after the rows are committed; a failure leaves an orphan file, never a
    row pointing at missing bytes."""
    for digest in digests:
        try:
            store.delete_blob(digest)
        except StorageError:
            log.exception("could not delete blob %s from storage", digest)
