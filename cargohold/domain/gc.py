"""Garbage collection: expired tag rows, unreachable manifests, unreferenced blobs, stale uploads.

A pass runs while the registry keeps serving. Every step works in bounded batches, each batch
its own short transaction, and finds its candidates through an index:

1. tag rows whose lifetime ended before the namespace's time-machine window (hidden rows as
   soon as they end; every row of a deleted repository or namespace);
2. manifests no tag row points at, no stored index lists, and (for referrers) whose subject is
   gone, together with their blob references; the repository's links to blobs no other
   manifest there refers to go with them;
3. links from uploads and mounts whose grace period (`RepositoryBlob.expires_at`) has passed;
4. blobs nothing links or references: the row is locked, re-checked, deleted, then the bytes
   are deleted while the lock is held, and only then committed. A push completing the same
   digest locks the row first (domain.uploads), so it either keeps the blob alive or finds the
   bytes gone and stores its own;
5. upload sessions untouched for longer than GC_UPLOAD_MAX_AGE, row first, bytes second;
6. deleted repositories once empty.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import (
    BigInteger,
    Select,
    and_,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from cargohold.config import Settings
from cargohold.db.base import begin_write, is_postgres
from cargohold.db.models.accounts import User
from cargohold.db.models.registry import (
    Blob,
    BlobUpload,
    Manifest,
    ManifestBlob,
    ManifestChild,
    ManifestLabel,
    Repository,
    RepositoryBlob,
    Tag,
)
from cargohold.domain import quota
from cargohold.storage.base import BlobStore, StorageError

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class GcReport:
    """What a pass removed (or, dry, would remove)."""

    dry_run: bool = False
    tags: int = 0
    manifests: list[str] = field(default_factory=list)
    links: int = 0
    blobs: list[str] = field(default_factory=list)
    uploads: int = 0
    repositories: int = 0
    blob_bytes: int = 0

    @property
    def anything(self) -> bool:
        return bool(
            self.tags
            or self.manifests
            or self.links
            or self.blobs
            or self.uploads
            or self.repositories
        )

    def summary(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"gc {verb}: {self.tags} tag rows, {len(self.manifests)} manifests, "
            f"{self.links} repository blob links, {len(self.blobs)} blobs, "
            f"{self.uploads} upload sessions, {self.repositories} deleted repositories"
        )


@dataclass
class GcRun:
    """One pass's parameters. `now` is the clock every rule is judged against."""

    session_factory: sessionmaker[Session]
    store: BlobStore
    settings: Settings
    now: dt.datetime
    namespace_id: int | None = None
    dry_run: bool = False
    progress: Progress | None = None
    report: GcReport = field(default_factory=GcReport)

    @property
    def now_ms(self) -> int:
        return int(self.now.timestamp() * 1000)

    @property
    def batch_size(self) -> int:
        return self.settings.GC_BATCH_SIZE

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)


def _reclaimed():
    """SQL: the repository (joined with its namespace) is deleted and only waits for GC."""
    return or_(Repository.deleted.is_(True), User.deleted.is_(True))


def _in_scope(query, run: GcRun):
    query = query.join(User, User.id == Repository.namespace_user_id)
    if run.namespace_id is not None:
        query = query.where(Repository.namespace_user_id == run.namespace_id)
    return query


# --- step 1: tag rows -------------------------------------------------------------------


def _expired_tags(run: GcRun):
    now = run.now_ms
    subject = aliased(Manifest)
    orphan_referrer = and_(
        Tag.hidden.is_(True),
        exists().where(
            Manifest.id == Tag.manifest_id,
            Manifest.subject_digest.is_not(None),
            Manifest.created <= run.now - dt.timedelta(seconds=run.settings.BLOB_UPLOAD_GRACE_SEC),
            ~exists().where(
                subject.repository_id == Manifest.repository_id,
                subject.digest == Manifest.subject_digest,
            ),
        ),
    )
    ended = and_(
        Tag.lifetime_end_ms.is_not(None),
        Tag.lifetime_end_ms <= now,
        or_(
            Tag.hidden.is_(True),
            and_(
                Tag.immutable.is_(False),
                Tag.lifetime_end_ms + cast(User.tag_expiration_s, BigInteger) * 1000
                <= literal(now, BigInteger),
            ),
        ),
    )
    query = select(Tag.id).join(Repository, Repository.id == Tag.repository_id)
    return _in_scope(query, run).where(or_(_reclaimed(), ended, orphan_referrer))


def _begin_write_if_any(session: Session, query: Select) -> bool:
    """Take the write lock for a step's batch once a plain read finds work for it. Most
    passes find nothing, and on SQLite a search under the lock stops every push while it
    scans; the step searches again under the lock before it writes."""
    if session.execute(query.limit(1)).first() is None:
        return False
    begin_write(session)
    return True


def _sweep_tags(run: GcRun, session: Session) -> None:
    while True:
        if not _begin_write_if_any(session, _expired_tags(run)):
            return
        ids = list(session.scalars(_expired_tags(run).limit(run.batch_size)).all())
        if not ids:
            return
        session.execute(delete(Tag).where(Tag.id.in_(ids)))
        session.flush()
        run.report.tags += len(ids)
        _commit(run, session)
        run.say(f"tags: {run.report.tags} rows removed")
        if len(ids) < run.batch_size:
            return


# --- step 2: manifests ------------------------------------------------------------------


def _unreachable_manifests(run: GcRun):
    subject = aliased(Manifest)
    query = select(Manifest.id, Manifest.repository_id, Manifest.digest).join(
        Repository, Repository.id == Manifest.repository_id
    )
    return _in_scope(query, run).where(
        ~exists().where(Tag.manifest_id == Manifest.id),
        ~exists().where(ManifestChild.child_manifest_id == Manifest.id),
        or_(
            _reclaimed(),
            Manifest.subject_digest.is_(None),
            ~exists().where(
                subject.repository_id == Manifest.repository_id,
                subject.digest == Manifest.subject_digest,
            ),
        ),
    )


def _sweep_manifests(run: GcRun, session: Session) -> None:
    # Removing an index makes its children candidates: rounds repeat while they remove any.
    while _manifest_round(run, session):
        pass


def _manifest_round(run: GcRun, session: Session) -> int:
    removed, cursor = 0, 0
    while True:
        if not _begin_write_if_any(
            session, _unreachable_manifests(run).where(Manifest.id > cursor)
        ):
            return removed
        rows = session.execute(
            _unreachable_manifests(run)
            .where(Manifest.id > cursor)
            .order_by(Manifest.id)
            .limit(run.batch_size)
        ).all()
        if not rows:
            return removed
        cursor = rows[-1].id
        ids = _still_unreachable(run, session, [row.id for row in rows])
        if not ids:
            session.rollback()
            continue
        references = session.execute(
            select(ManifestBlob.repository_id, ManifestBlob.blob_id).where(
                ManifestBlob.manifest_id.in_(ids)
            )
        ).all()
        session.execute(delete(ManifestLabel).where(ManifestLabel.manifest_id.in_(ids)))
        session.execute(delete(ManifestBlob).where(ManifestBlob.manifest_id.in_(ids)))
        session.execute(delete(ManifestChild).where(ManifestChild.manifest_id.in_(ids)))
        digests = session.scalars(
            delete(Manifest)
            .where(
                Manifest.id.in_(ids),
                ~exists().where(Tag.manifest_id == Manifest.id),
                ~exists().where(ManifestChild.child_manifest_id == Manifest.id),
            )
            .returning(Manifest.digest)
        ).all()
        run.report.links += _drop_unreferenced_links(session, references)
        for repository_id in sorted({row.repository_id for row in rows}):
            repository = session.get(Repository, repository_id)
            if repository is not None:
                quota.record_manifest_change(
                    session, run.settings, repository.namespace_user_id, repository.id
                )
        run.report.manifests.extend(digests)
        removed += len(digests)
        _commit(run, session)
        run.say(f"manifests: {len(run.report.manifests)} removed")


def _still_unreachable(run: GcRun, session: Session, candidates: list[int]) -> list[int]:
    """The candidates that are still unreachable once a concurrent push can no longer change that.

    On PostgreSQL a push storing a manifest share-locks the links it relies on and then
    key-share-locks the manifest it tags; GC locks in the same order (links, then manifests)
    and only then looks again, in statements that see what those pushes committed. SQLite
    runs one writer at a time, so the second look changes nothing there.
    """
    if is_postgres(session):
        session.execute(
            select(RepositoryBlob.id)
            .join(
                ManifestBlob,
                and_(
                    ManifestBlob.repository_id == RepositoryBlob.repository_id,
                    ManifestBlob.blob_id == RepositoryBlob.blob_id,
                ),
            )
            .where(ManifestBlob.manifest_id.in_(candidates))
            .order_by(RepositoryBlob.id)
            .with_for_update(of=RepositoryBlob)
        )
        session.execute(
            select(Manifest.id)
            .where(Manifest.id.in_(candidates))
            .order_by(Manifest.id)
            .with_for_update(of=Manifest)
        )
    return list(
        session.scalars(_unreachable_manifests(run).where(Manifest.id.in_(candidates))).all()
    )


def _drop_unreferenced_links(session: Session, references: Iterable[tuple[int, int]]) -> int:
    """Links that only existed because a now-deleted manifest referred to the blob."""
    removed = 0
    for repository_id, blob_id in sorted(set(references)):
        result = session.execute(
            delete(RepositoryBlob).where(
                RepositoryBlob.repository_id == repository_id,
                RepositoryBlob.blob_id == blob_id,
                RepositoryBlob.expires_at.is_(None),
                ~exists().where(
                    ManifestBlob.repository_id == repository_id,
                    ManifestBlob.blob_id == blob_id,
                ),
            )
        )
        removed += result.rowcount or 0
    return removed


# --- step 3: links past their grace period ----------------------------------------------


def _link_expired(run: GcRun):
    referenced = exists().where(
        ManifestBlob.repository_id == RepositoryBlob.repository_id,
        ManifestBlob.blob_id == RepositoryBlob.blob_id,
    )
    return and_(
        RepositoryBlob.expires_at.is_not(None),
        RepositoryBlob.expires_at <= run.now,
        ~referenced,
    )


def _expired_links(run: GcRun):
    query = select(RepositoryBlob.id, RepositoryBlob.repository_id).join(
        Repository, Repository.id == RepositoryBlob.repository_id
    )
    return _in_scope(query, run).where(or_(_reclaimed(), _link_expired(run)))


def _sweep_links(run: GcRun, session: Session) -> None:
    while True:
        if not _begin_write_if_any(session, _expired_links(run)):
            return
        rows = session.execute(_expired_links(run).limit(run.batch_size)).all()
        if not rows:
            return
        ids = [row.id for row in rows]
        reclaimed = session.scalars(
            select(Repository.id)
            .join(User, User.id == Repository.namespace_user_id)
            .where(Repository.id.in_({row.repository_id for row in rows}), _reclaimed())
        ).all()
        # The conditions again in the DELETE: a push that renewed a link since the select
        # (it locks the row) keeps it.
        result = session.execute(
            delete(RepositoryBlob).where(
                RepositoryBlob.id.in_(ids),
                or_(RepositoryBlob.repository_id.in_(reclaimed), _link_expired(run)),
            )
        )
        run.report.links += result.rowcount or 0
        _commit(run, session)
        run.say(f"links: {run.report.links} removed")
        if len(ids) < run.batch_size or not result.rowcount:
            return


# --- step 4: blobs ----------------------------------------------------------------------


def _orphan():
    return and_(
        ~exists().where(RepositoryBlob.blob_id == Blob.id),
        ~exists().where(ManifestBlob.blob_id == Blob.id),
    )


def _sweep_blobs(run: GcRun, session: Session) -> None:
    """Walk the blob table by id (a cursor, not an offset) and reclaim orphans batch by batch."""
    cursor = 0
    while True:
        ids = list(
            session.scalars(
                select(Blob.id)
                .where(Blob.id > cursor, _orphan())
                .order_by(Blob.id)
                .limit(run.batch_size)
            ).all()
        )
        session.rollback()
        if not ids:
            return
        cursor = ids[-1]
        _reclaim_blobs(run, session, ids)
        run.say(f"blobs: {len(run.report.blobs)} removed")


def _reclaim_blobs(run: GcRun, session: Session, ids: list[int]) -> None:
    begin_write(session)
    query = select(Blob).where(Blob.id.in_(ids), _orphan()).order_by(Blob.id)
    if is_postgres(session):
        # The lock a completing upload also takes (domain.uploads): held until the bytes
        # are gone, so the push either sees the row or sees the bytes missing.
        query = query.with_for_update()
    doomed = list(session.scalars(query).all())
    if not doomed:
        session.rollback()
        return
    digests = [blob.digest for blob in doomed]
    try:
        session.execute(delete(Blob).where(Blob.id.in_([blob.id for blob in doomed])))
        session.flush()
    except IntegrityError:
        # A manifest committed a reference to one of them meanwhile: keep the batch.
        session.rollback()
        return
    try:
        for digest in digests:
            run.store.delete_blob(digest)
    except StorageError:
        session.rollback()
        log.exception("gc: storage refused a delete; the blob rows stay for the next pass")
        return
    session.commit()
    run.report.blobs.extend(digests)
    run.report.blob_bytes += sum(blob.size or 0 for blob in doomed)


# --- step 5: abandoned uploads ----------------------------------------------------------


def _sweep_uploads(run: GcRun, session: Session) -> None:
    cutoff = run.now - dt.timedelta(seconds=run.settings.gc_upload_max_age_s)
    query = select(BlobUpload.id, BlobUpload.uuid, BlobUpload.storage_metadata).join(
        Repository, Repository.id == BlobUpload.repository_id
    )
    query = _in_scope(query, run).where(or_(_reclaimed(), BlobUpload.updated <= cutoff))
    if run.dry_run:
        run.report.uploads = session.scalar(select(func.count()).select_from(query.subquery()))
        return
    while True:
        if not _begin_write_if_any(session, query):
            return
        rows = session.execute(query.limit(run.batch_size)).all()
        if not rows:
            return
        session.execute(delete(BlobUpload).where(BlobUpload.id.in_([row.id for row in rows])))
        session.commit()
        run.report.uploads += len(rows)
        # Bytes go only once no row points at them; a failure leaves unreachable bytes,
        # never a row without bytes.
        for row in rows:
            try:
                run.store.cancel_upload(row.uuid, json.loads(row.storage_metadata or "{}"))
            except StorageError:
                log.exception("gc: could not drop the bytes of upload %s", row.uuid)
        run.say(f"uploads: {run.report.uploads} removed")
        if len(rows) < run.batch_size:
            return


# --- step 6: deleted repositories -------------------------------------------------------


def _sweep_repositories(run: GcRun, session: Session) -> None:
    query = _in_scope(select(Repository.id, Repository.namespace_user_id), run).where(
        _reclaimed(),
        ~exists().where(Tag.repository_id == Repository.id),
        ~exists().where(Manifest.repository_id == Repository.id),
        ~exists().where(RepositoryBlob.repository_id == Repository.id),
        ~exists().where(BlobUpload.repository_id == Repository.id),
    )
    if not _begin_write_if_any(session, query):
        return
    namespaces: set[int] = set()
    for repository_id, namespace_id in session.execute(query.limit(run.batch_size)).all():
        try:
            with session.begin_nested():
                session.execute(delete(Repository).where(Repository.id == repository_id))
        except IntegrityError:
            log.warning("gc: repository %s is still referenced; kept for now", repository_id)
            continue
        run.report.repositories += 1
        namespaces.add(namespace_id)
    for namespace_id in sorted(namespaces):
        quota.record_namespace_change(session, run.settings, namespace_id)
    session.commit()


def _commit(run: GcRun, session: Session) -> None:
    """Commit a batch, or in a dry run keep it in the open transaction to see its effects."""
    if run.dry_run:
        session.flush()
    else:
        session.commit()


def run_pass(
    session_factory: sessionmaker[Session],
    store: BlobStore,
    settings: Settings,
    *,
    now: dt.datetime,
    namespace_id: int | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> GcReport:
    """One full pass. A dry run works inside one transaction that is rolled back at the end,
    so it reports exactly what a real pass would remove and touches no bytes."""
    run = GcRun(
        session_factory,
        store,
        settings,
        now,
        namespace_id=namespace_id,
        dry_run=dry_run,
        progress=progress,
        report=GcReport(dry_run=dry_run),
    )
    with session_factory() as session:
        try:
            _sweep_tags(run, session)
            _sweep_manifests(run, session)
            _sweep_links(run, session)
            if dry_run:
                _dry_blobs(run, session)
            else:
                _sweep_blobs(run, session)
            _sweep_uploads(run, session)
            if not dry_run:
                _sweep_repositories(run, session)
        finally:
            session.rollback()
    return run.report


def _dry_blobs(run: GcRun, session: Session) -> None:
    """Blob candidates as they stand after the steps above (still uncommitted)."""
    cursor = 0
    while True:
        rows = session.execute(
            select(Blob.id, Blob.digest)
            .where(Blob.id > cursor, _orphan())
            .order_by(Blob.id)
            .limit(run.batch_size)
        ).all()
        if not rows:
            return
        cursor = rows[-1].id
        run.report.blobs.extend(row.digest for row in rows)


# --- explaining what keeps something alive ----------------------------------------------


def why(session: Session, digest: str, *, now: dt.datetime) -> list[str]:
    """Human-readable reasons a manifest or blob with this digest is kept (empty: nothing)."""
    now_ms = int(now.timestamp() * 1000)
    reasons: list[str] = []
    manifests = session.execute(
        select(Manifest, Repository, User)
        .join(Repository, Repository.id == Manifest.repository_id)
        .join(User, User.id == Repository.namespace_user_id)
        .where(Manifest.digest == digest)
    ).all()
    for manifest, repository, namespace in manifests:
        where = f"{namespace.username}/{repository.name}"
        reasons.extend(
            f"manifest in {where}: {line}"
            for line in _manifest_reasons(session, manifest, namespace, now_ms)
        )
    blob = session.scalar(select(Blob).where(Blob.digest == digest))
    if blob is not None:
        reasons.extend(_blob_reasons(session, blob, now))
    return reasons


def _manifest_reasons(
    session: Session, manifest: Manifest, namespace: User, now_ms: int
) -> list[str]:
    lines: list[str] = []
    window_ms = namespace.tag_expiration_s * 1000
    for tag in session.scalars(select(Tag).where(Tag.manifest_id == manifest.id).order_by(Tag.id)):
        kind = "hidden tag" if tag.hidden else "tag"
        if tag.lifetime_end_ms is None or tag.lifetime_end_ms > now_ms:
            lines.append(f"{kind} {tag.name!r} is alive")
        elif tag.immutable and not tag.hidden:
            lines.append(f"immutable tag {tag.name!r} ended but immutable rows are kept")
        elif not tag.hidden and tag.lifetime_end_ms > now_ms - window_ms:
            until = dt.datetime.fromtimestamp((tag.lifetime_end_ms + window_ms) / 1000, dt.UTC)
            lines.append(f"tag {tag.name!r} ended; restorable until {until.isoformat()}")
        else:
            lines.append(f"{kind} {tag.name!r} ended long ago; removed by the next pass")
    parents = session.scalars(
        select(Manifest.digest)
        .join(ManifestChild, ManifestChild.manifest_id == Manifest.id)
        .where(ManifestChild.child_manifest_id == manifest.id)
    ).all()
    lines.extend(f"listed by index {parent}" for parent in parents)
    if manifest.subject_digest is not None:
        subject = session.scalar(
            select(Manifest.id).where(
                Manifest.repository_id == manifest.repository_id,
                Manifest.digest == manifest.subject_digest,
            )
        )
        if subject is not None:
            lines.append(f"refers to subject {manifest.subject_digest}, which is stored")
    return lines


def _blob_reasons(session: Session, blob: Blob, now: dt.datetime) -> list[str]:
    lines: list[str] = []
    references = session.execute(
        select(Manifest.digest, Repository.name, User.username)
        .join(ManifestBlob, ManifestBlob.manifest_id == Manifest.id)
        .join(Repository, Repository.id == Manifest.repository_id)
        .join(User, User.id == Repository.namespace_user_id)
        .where(ManifestBlob.blob_id == blob.id)
        .order_by(Manifest.id)
    ).all()
    lines.extend(
        f"blob referenced by manifest {row.digest} in {row.username}/{row.name}"
        for row in references
    )
    links = session.execute(
        select(RepositoryBlob.expires_at, Repository.name, User.username)
        .join(Repository, Repository.id == RepositoryBlob.repository_id)
        .join(User, User.id == Repository.namespace_user_id)
        .where(RepositoryBlob.blob_id == blob.id, RepositoryBlob.expires_at.is_not(None))
        .order_by(RepositoryBlob.id)
    ).all()
    for row in links:
        expires = (
            row.expires_at.replace(tzinfo=dt.UTC)
            if row.expires_at.tzinfo is None
            else row.expires_at
        )
        if expires > now:
            lines.append(
                f"blob uploaded or mounted in {row.username}/{row.name}; "
                f"grace period until {expires.isoformat()}"
            )
    return lines
