"""Blobs: content-addressed bytes shared by every repository, and which repository may serve them.

A repository may serve a blob when a RepositoryBlob row links them (uploaded, mounted or
referenced by a manifest there). Links made by uploads and mounts carry `expires_at`, a grace
period during which GC leaves them alone even though no manifest refers to them yet.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Insert, and_, bindparam, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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


@dataclass(frozen=True)
class BlobRef:
    """A blob's row without the ORM object: what completing an upload needs."""

    id: int
    digest: str
    size: int


_BLOB = Blob.__table__
_LINK = RepositoryBlob.__table__
# Built once, as plain Core on the tables: a push runs them for every blob. SQLite leaves
# FOR UPDATE out: the transaction holds its write lock already.
_LOCK_BLOB = (
    select(_BLOB.c.id, _BLOB.c.size).where(_BLOB.c.digest == bindparam("digest")).with_for_update()
)


def _insert_blob(insert_fn) -> Insert:
    return (
        insert_fn(_BLOB)
        .values(
            digest=bindparam("digest"),
            size=bindparam("size"),
            created=bindparam("now", type_=_BLOB.c.created.type),
        )
        .on_conflict_do_nothing(index_elements=[_BLOB.c.digest])
        .returning(_BLOB.c.id)
    )


def _upsert_link(insert_fn) -> Insert:
    # A conflicting link is renewed only when that lengthens its life (NULL: for ever). On
    # PostgreSQL the conflicting row is locked even when the WHERE keeps it as it is.
    statement = insert_fn(_LINK).values(
        repository_id=bindparam("repository_id"),
        blob_id=bindparam("blob_id"),
        created=bindparam("now", type_=_LINK.c.created.type),
        expires_at=bindparam("expires_at", type_=_LINK.c.expires_at.type),
    )
    return statement.on_conflict_do_update(
        index_elements=[_LINK.c.repository_id, _LINK.c.blob_id],
        set_={"expires_at": statement.excluded.expires_at},
        where=and_(
            _LINK.c.expires_at.is_not(None),
            or_(
                statement.excluded.expires_at.is_(None),
                statement.excluded.expires_at > _LINK.c.expires_at,
            ),
        ),
    )


_INSERT_BLOB = {"sqlite": _insert_blob(sqlite_insert), "postgresql": _insert_blob(pg_insert)}
_UPSERT_LINK = {"sqlite": _upsert_link(sqlite_insert), "postgresql": _upsert_link(pg_insert)}


def ensure_blob(session: Session, digest: str, size: int) -> BlobRef:
    """The Blob row for `digest`, locked until commit; concurrent creators end up with one row.

    GC takes the same lock before deleting a blob's row and bytes, so a caller that checks
    storage after this call sees either bytes GC will not touch or no bytes at all. A row
    this call inserts is its own until commit; an existing one is taken FOR UPDATE (the
    insert waits for a creator or a GC that has it, then finds it or not).
    """
    begin_write(session)
    connection = session.connection()
    dialect = connection.dialect.name
    while True:
        inserted = connection.execute(
            _INSERT_BLOB[dialect], {"digest": digest, "size": size, "now": utcnow()}
        ).scalar()
        if inserted is not None:
            return BlobRef(inserted, digest, size)
        found = connection.execute(_LOCK_BLOB, {"digest": digest}).first()
        if found is not None:
            return BlobRef(found.id, digest, found.size)
        # GC deleted the row between the two statements: insert it again.


def link_blob(
    session: Session, repository_id: int, blob_id: int, *, expires_at: dt.datetime | None
) -> None:
    """Let a repository serve a blob. A link never gets a shorter life than it had.

    On PostgreSQL GC may be deleting this link because its grace ran out: the insert waits
    for it, then creates the link again.
    """
    begin_write(session)
    connection = session.connection()
    connection.execute(
        _UPSERT_LINK[connection.dialect.name],
        {
            "repository_id": repository_id,
            "blob_id": blob_id,
            "now": utcnow(),
            "expires_at": expires_at,
        },
    )


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
    link_blob(session, target_repository_id, blob.id, expires_at=grace_deadline(grace))
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
