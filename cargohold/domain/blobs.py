"""Blobs: content-addressed bytes shared by every repository, and which repository may serve them.

A repository may serve a blob when a RepositoryBlob row links them (uploaded, mounted or
referenced by a manifest there). Links made by uploads and mounts carry `expires_at`, a grace
period during which GC leaves them alone even though no manifest refers to them yet.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cargohold.db.base import begin_write, is_postgres, utcnow
from cargohold.db.models.registry import Blob, RepositoryBlob

# How long an uploaded or mounted blob stays in a repository with no manifest referring to it,
# unless the caller passes the configured BLOB_UPLOAD_GRACE_SEC.
UNREFERENCED_BLOB_GRACE = dt.timedelta(days=1)

DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
# Any algorithm the OCI grammar allows; only sha256 and sha512 can be verified.
DIGEST_GRAMMAR_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


def is_valid_digest(digest: str) -> bool:
    return DIGEST_RE.match(digest) is not None


def grace_deadline(grace: dt.timedelta = UNREFERENCED_BLOB_GRACE) -> dt.datetime:
    return utcnow() + grace


def get_blob(session: Session, digest: str) -> Blob | None:
    return session.scalar(select(Blob).where(Blob.digest == digest))


def repository_blob(session: Session, repository_id: int, digest: str) -> Blob | None:
    """The blob when this repository may serve it."""
    return session.scalar(
        select(Blob)
        .join(RepositoryBlob, RepositoryBlob.blob_id == Blob.id)
        .where(RepositoryBlob.repository_id == repository_id, Blob.digest == digest)
    )


def repository_blobs(
    session: Session, repository_id: int, digests: Iterable[str], *, hold_links: bool = False
) -> dict[str, Blob]:
    """The blobs among `digests` this repository may serve, by digest (one query).

    `hold_links` share-locks the links until commit (PostgreSQL): a manifest about to refer
    to them keeps GC from dropping a link it still sees as unreferenced (gc takes the same
    rows FOR UPDATE before it looks for references).
    """
    wanted = set(digests)
    if not wanted:
        return {}
    query = (
        select(Blob)
        .join(RepositoryBlob, RepositoryBlob.blob_id == Blob.id)
        .where(RepositoryBlob.repository_id == repository_id, Blob.digest.in_(wanted))
    )
    if hold_links and is_postgres(session):
        query = query.order_by(Blob.id).with_for_update(read=True, of=RepositoryBlob)
    rows = session.scalars(query).all()
    return {blob.digest: blob for blob in rows}


def _locked_blob(session: Session, digest: str) -> Blob | None:
    query = select(Blob).where(Blob.digest == digest)
    if is_postgres(session):
        query = query.with_for_update()
    return session.scalar(query)


def ensure_blob(session: Session, digest: str, size: int) -> Blob:
    """The Blob row for `digest`, locked until commit; concurrent creators end up with one row.

    GC takes the same lock before deleting a blob's row and bytes, so a caller that checks
    storage after this call sees either bytes GC will not touch or no bytes at all.
    """
    begin_write(session)
    blob = _locked_blob(session, digest)
    if blob is not None:
        return blob
    try:
        with session.begin_nested():
            blob = Blob(digest=digest, size=size, created=utcnow())
            session.add(blob)
            session.flush()
    except IntegrityError:
        blob = _locked_blob(session, digest)
        if blob is None:
            raise
    return blob


def link_blob(
    session: Session, repository_id: int, blob: Blob, *, expires_at: dt.datetime | None
) -> None:
    """Let a repository serve a blob. A link never gets a shorter life than it had."""
    begin_write(session)
    query = select(RepositoryBlob).where(
        RepositoryBlob.repository_id == repository_id, RepositoryBlob.blob_id == blob.id
    )
    if is_postgres(session):
        # GC may be deleting this link because its grace ran out: wait for it, then recreate.
        query = query.with_for_update()
    link = session.scalar(query)
    if link is None:
        try:
            with session.begin_nested():
                session.add(
                    RepositoryBlob(
                        repository_id=repository_id,
                        blob_id=blob.id,
                        created=utcnow(),
                        expires_at=expires_at,
                    )
                )
                session.flush()
            return
        except IntegrityError:
            link = session.scalar(
                select(RepositoryBlob).where(
                    RepositoryBlob.repository_id == repository_id,
                    RepositoryBlob.blob_id == blob.id,
                )
            )
            if link is None:
                raise
    if link.expires_at is None:
        return
    if expires_at is None or expires_at > link.expires_at:
        link.expires_at = expires_at


def mark_referenced(session: Session, repository_id: int, digests: Iterable[str]) -> None:
    """Blobs a manifest being stored refers to no longer need a grace period in that
    repository. Call before `repository_blobs(..., hold_links=True)`; the caller rolls back
    if the manifest is refused.

    On PostgreSQL the links still in grace are locked exclusively here, in id order, before
    the shared hold is taken: two pushes of the same new layer would otherwise both hold it
    shared and then deadlock, each waiting to update it under the other's hold.
    """
    wanted = sorted(set(digests))
    if wanted:
        session.execute(_clear_grace_statement, {"repository": repository_id, "digests": wanted})


# Core, not ORM: no loaded link needs synchronising, and the statement is built once.
_links = RepositoryBlob.__table__
_in_grace = (
    select(_links.c.id)
    .join(Blob, Blob.id == _links.c.blob_id)
    .where(
        _links.c.repository_id == bindparam("repository"),
        Blob.digest.in_(bindparam("digests", expanding=True)),
        _links.c.expires_at.is_not(None),
    )
    .order_by(_links.c.id)
    .with_for_update(of=_links)
)
_clear_grace_statement = (
    update(_links).where(_links.c.id.in_(_in_grace.scalar_subquery())).values(expires_at=None)
)


def mount_blob(
    session: Session,
    source_repository_id: int,
    target_repository_id: int,
    digest: str,
    *,
    grace: dt.timedelta = UNREFERENCED_BLOB_GRACE,
) -> Blob | None:
    """Link a blob the source repository serves into the target; None when it has none."""
    blob = repository_blob(session, source_repository_id, digest)
    if blob is None:
        return None
    link_blob(session, target_repository_id, blob, expires_at=grace_deadline(grace))
    return blob


def unlink_blob(session: Session, repository_id: int, digest: str) -> bool:
    """Stop serving a blob from a repository (GC reclaims the bytes). False when not linked."""
    blob = repository_blob(session, repository_id, digest)
    if blob is None:
        return False
    session.execute(
        delete(RepositoryBlob).where(
            RepositoryBlob.repository_id == repository_id, RepositoryBlob.blob_id == blob.id
        )
    )
    return True
