"""Blob upload sessions: streamed appends, digest computed on the fly, atomic completion.

A session's state lives in the BlobUpload row (bytes received so far, driver state) and in
storage (the bytes), so any process can continue it. The running SHA-256 cannot be serialised,
so it is kept in a small per-process cache keyed by (session, offset); a process that does not
have it rebuilds it by reading the stored bytes back once.

The recorded byte count is the truth: storage has a request's bytes before the row records
them, so storage may hold more (the request died between the two, or mid-body); it holds less
only after a crash lost unsynced bytes (storage syncs a session's bytes when they become a
blob, not at every append). Every request that touches a session's bytes first holds them
(one at a time), then reads the row and trims storage to the recorded length; a session whose
storage holds less than recorded has lost data and is dropped, so its client starts over.

Completion locks (or creates) the blob's row, makes the bytes a blob in storage, and commits
both together: the database never points at bytes storage does not have, and a session that
is never completed leaves nothing any repository can see.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import uuid as uuid_module
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from cargohold.config import Settings
from cargohold.db.base import begin_write, utcnow
from cargohold.db.models.registry import BlobUpload
from cargohold.domain import blobs, quota
from cargohold.domain.errors import DomainError, Invalid, NotFound
from cargohold.domain.repositories import RepositoryRef
from cargohold.storage.base import (
    BlobStore,
    UploadBusy,
    UploadDataLost,
    UploadHold,
    UploadWriter,
)

HASHER_CACHE_SIZE = 512


class UploadError(DomainError):
    """Base of the upload rule violations; the message is safe to show."""


class UploadUnknown(UploadError, NotFound):
    """No such session (any more); `extra` names its uuid."""

    def __init__(self, message: str, upload_uuid: str) -> None:
        super().__init__(message, uuid=upload_uuid)


class UploadLost(UploadUnknown):
    """Storage lost recorded bytes; the session was cancelled (the caller commits that)."""


class UploadInvalid(UploadError, Invalid):
    pass


class RangeMismatch(UploadError, Invalid):
    """A chunk does not start where the session's bytes end."""

    def __init__(self, upload_uuid: str, expected_start: int) -> None:
        super().__init__(f"chunk must start at byte {expected_start}")
        self.upload_uuid = upload_uuid
        self.expected_start = expected_start


class DigestMismatch(UploadError, Invalid):
    """The bytes do not have the digest the client named; `extra` names that digest."""

    def __init__(self, message: str, digest: str) -> None:
        super().__init__(message, digest=digest)


class _HasherCache:
    """The running SHA-256 of recent sessions, keyed by (upload uuid, bytes hashed)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, upload_uuid: str, offset: int):
        with self._lock:
            hasher = self._items.get((upload_uuid, offset))
            return None if hasher is None else hasher.copy()

    def put(self, upload_uuid: str, offset: int, hasher) -> None:
        with self._lock:
            self._items[(upload_uuid, offset)] = hasher
            self._items.move_to_end((upload_uuid, offset))
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def forget(self, upload_uuid: str) -> None:
        with self._lock:
            for key in [key for key in self._items if key[0] == upload_uuid]:
                del self._items[key]


_hashers = _HasherCache(HASHER_CACHE_SIZE)


@dataclass
class UploadRow:
    """A session's row, read with plain Core: the upload path reads and writes it per request."""

    id: int
    uuid: str
    repository_id: int
    byte_count: int
    storage_metadata: str


_UPLOAD = BlobUpload.__table__
# Built once: building a statement costs more than running it on these one-row lookups.
_FIND_UPLOAD = select(
    _UPLOAD.c.id,
    _UPLOAD.c.uuid,
    _UPLOAD.c.repository_id,
    _UPLOAD.c.byte_count,
    _UPLOAD.c.storage_metadata,
).where(_UPLOAD.c.uuid == bindparam("uuid"), _UPLOAD.c.repository_id == bindparam("repository_id"))
_INSERT_UPLOAD = (
    insert(_UPLOAD)
    .values(
        uuid=bindparam("uuid"),
        repository_id=bindparam("repository_id"),
        byte_count=0,
        chunk_count=0,
        storage_metadata=bindparam("state"),
        created=bindparam("now", type_=_UPLOAD.c.created.type),
        updated=bindparam("now", type_=_UPLOAD.c.updated.type),
    )
    .returning(_UPLOAD.c.id)
)
# The guard `byte_count = start`: nothing else recorded bytes since this request read the row.
_RECORD_PROGRESS = (
    update(_UPLOAD)
    .where(_UPLOAD.c.id == bindparam("upload_id"), _UPLOAD.c.byte_count == bindparam("start"))
    .values(
        byte_count=bindparam("count"),
        chunk_count=_UPLOAD.c.chunk_count + 1,
        storage_metadata=bindparam("state"),
        updated=bindparam("now", type_=_UPLOAD.c.updated.type),
    )
)
_DELETE_UPLOAD = delete(_UPLOAD).where(_UPLOAD.c.id == bindparam("upload_id"))
_DELETE_UPLOAD_AT = _DELETE_UPLOAD.where(_UPLOAD.c.byte_count == bindparam("start"))


def _state(upload: UploadRow) -> dict[str, Any]:
    return json.loads(upload.storage_metadata or "{}")


def _is_canonical(upload_uuid: str) -> bool:
    try:
        return str(uuid_module.UUID(upload_uuid)) == upload_uuid
    except ValueError:
        return False


def get_upload(session: Session, repository_id: int, upload_uuid: str) -> UploadRow | None:
    if not _is_canonical(upload_uuid):
        return None
    row = (
        session.connection()
        .execute(_FIND_UPLOAD, {"uuid": upload_uuid, "repository_id": repository_id})
        .first()
    )
    return None if row is None else UploadRow(*row)


def require_upload(session: Session, repository_id: int, upload_uuid: str) -> UploadRow:
    """The repository's upload session `upload_uuid`; UploadUnknown when there is none."""
    upload = get_upload(session, repository_id, upload_uuid)
    if upload is None:
        raise UploadUnknown("blob upload unknown to registry", upload_uuid)
    return upload


def start_upload(session: Session, store: BlobStore, repository_id: int) -> UploadRow:
    """A new session; storage is prepared before the row exists. The caller commits."""
    upload_uuid = str(uuid_module.uuid4())
    state = json.dumps(store.begin_upload(upload_uuid))
    begin_write(session)
    upload_id = (
        session.connection()
        .execute(
            _INSERT_UPLOAD,
            {
                "uuid": upload_uuid,
                "repository_id": repository_id,
                "state": state,
                "now": utcnow(),
            },
        )
        .scalar_one()
    )
    _hashers.put(upload_uuid, 0, hashlib.sha256())
    return UploadRow(upload_id, upload_uuid, repository_id, 0, state)


def hold_upload(
    session: Session, store: BlobStore, repository_id: int, upload_uuid: str
) -> tuple[UploadRow, UploadHold]:
    """Hold the session's bytes, then read its row and cut storage to its recorded length.

    The row is read only once the hold is taken: the request that held it before has
    committed the progress it recorded by then. On UploadLost the caller commits.
    """
    if not _is_canonical(upload_uuid):
        raise UploadUnknown("blob upload unknown to registry", upload_uuid)
    try:
        hold = store.hold_upload(upload_uuid)
    except UploadBusy as exc:
        # Busy says the session exists: only to callers that may see it.
        require_upload(session, repository_id, upload_uuid)
        raise UploadInvalid("the upload is being written by another request") from exc
    except UploadDataLost as exc:
        # Committed or cancelled by another request meanwhile; the row goes with that.
        raise UploadUnknown("the upload has no data", upload_uuid) from exc
    try:
        upload = require_upload(session, repository_id, upload_uuid)
        try:
            hold.trim(_state(upload), upload.byte_count)
        except UploadDataLost as exc:
            cancel_upload(session, store, upload)
            raise UploadLost(
                "the upload's stored data was lost; start the upload again", upload_uuid
            ) from exc
    except BaseException:
        hold.release()
        raise
    return upload, hold


def recorded_length(
    session: Session, store: BlobStore, repository_id: int, upload_uuid: str
) -> int:
    """The bytes the session has kept, with anything a dead request left beyond them cut.

    While another request is appending, its bytes are not recorded yet: report the row.
    On UploadLost the caller commits.
    """
    try:
        upload, hold = hold_upload(session, store, repository_id, upload_uuid)
    except UploadInvalid:
        return require_upload(session, repository_id, upload_uuid).byte_count
    hold.release()
    return upload.byte_count


def _rebuild_hasher(store: BlobStore, upload: UploadRow):
    hasher = hashlib.sha256()
    total = 0
    for chunk in store.read_upload(upload.uuid, _state(upload)):
        hasher.update(chunk)
        total += len(chunk)
    if total != upload.byte_count:
        raise UploadInvalid("the upload's stored data does not match its recorded size")
    return hasher


def _hasher_for(store: BlobStore, upload: UploadRow):
    """The SHA-256 of the session's recorded bytes; call it while holding them."""
    hasher = _hashers.get(upload.uuid, upload.byte_count)
    if hasher is None:
        hasher = _rebuild_hasher(store, upload)
    return hasher


class Appender:
    """Appends one request's body to a held session: write() per piece, then finish() and,
    once the progress is committed, release(); or abort()."""

    def __init__(self, store: BlobStore, upload: UploadRow, hold: UploadHold) -> None:
        self.upload = upload
        self.start = upload.byte_count
        self.received = 0
        self._hold = hold
        self._hasher = _hasher_for(store, upload)
        self._writer: UploadWriter = store.open_upload(upload.uuid, _state(upload))
        self._open = True

    def write(self, data: bytes) -> None:
        self._hasher.update(data)
        self._writer.write(data)
        self.received += len(data)

    def finish(self) -> dict[str, Any]:
        """Hand the last bytes to storage; returns the driver state to record."""
        state = self._writer.close()
        self._open = False
        return state

    def release(self) -> None:
        """Let other requests at the session; only after its progress is committed, or the
        next holder would trim bytes the row is about to record."""
        self._hold.release()

    def abort(self) -> None:
        if self._open:
            self._open = False
            self._writer.abort()
        self._hold.release()

    @property
    def hasher(self):
        return self._hasher


def _advance(appender: Appender, state: dict[str, Any]) -> None:
    """The appender's row, in memory, as the append leaves it."""
    upload = appender.upload
    upload.byte_count = appender.start + appender.received
    upload.storage_metadata = json.dumps(state)


def record_progress(session: Session, appender: Appender, state: dict[str, Any]) -> None:
    """Record a finished append on the session's row, unless another request moved it on.

    The caller commits, then releases the appender. Raises UploadInvalid when the row no
    longer starts where the append did (on S3, where appends do not exclude each other,
    another request recorded first; or the session was cancelled meanwhile).
    """
    upload = appender.upload
    result = session.connection().execute(
        _RECORD_PROGRESS,
        {
            "upload_id": upload.id,
            "start": appender.start,
            "count": appender.start + appender.received,
            "state": json.dumps(state),
            "now": utcnow(),
        },
    )
    if result.rowcount != 1:
        raise UploadInvalid("the upload was changed by another request")
    _advance(appender, state)
    _hashers.put(appender.upload.uuid, appender.upload.byte_count, appender.hasher)


def open_appender(
    session: Session,
    store: BlobStore,
    repository_id: int,
    upload_uuid: str,
    range_start: int | None,
) -> Appender:
    """An appender for a chunk that claims to start at `range_start` (None: wherever we are).

    Holds the session until the appender is released or aborted. On UploadLost the caller
    commits.
    """
    upload, hold = hold_upload(session, store, repository_id, upload_uuid)
    try:
        if range_start is not None and range_start != upload.byte_count:
            raise RangeMismatch(upload.uuid, upload.byte_count)
        return Appender(store, upload, hold)
    except BaseException:
        hold.release()
        raise


def _digest_of(store: BlobStore, upload: UploadRow, algorithm: str, sha256=None) -> str:
    """The digest of the session's bytes; `sha256`: their running hash, when the caller has it."""
    if algorithm == "sha256":
        return "sha256:" + (sha256 or _hasher_for(store, upload)).hexdigest()
    other = hashlib.new(algorithm)
    for chunk in store.read_upload(upload.uuid, _state(upload)):
        other.update(chunk)
    return f"{algorithm}:{other.hexdigest()}"


def complete_upload(
    session: Session,
    store: BlobStore,
    repository_id: int,
    upload_uuid: str,
    digest: str,
    *,
    grace: dt.timedelta = blobs.UNREFERENCED_BLOB_GRACE,
) -> blobs.BlobRef:
    """Turn the session into the blob `digest` and link it to the session's repository.

    The caller commits. On a digest mismatch the session is cancelled and nothing is kept;
    on UploadLost the session is cancelled too.
    """
    if not blobs.is_valid_digest(digest):
        raise DigestMismatch("invalid digest", digest)
    # Held so that no append lands in the bytes while they are hashed and become the blob.
    upload, hold = hold_upload(session, store, repository_id, upload_uuid)
    try:
        return _complete_held(
            session, store, upload, digest, grace, start=upload.byte_count, synced=False
        )
    finally:
        hold.release()


def prepare_completion(
    store: BlobStore, appender: Appender, state: dict[str, Any], digest: str
) -> bool:
    """Before the transaction that completes an appended session: sync its bytes and, when
    they are the blob `digest` and storage does not have it yet, make them that blob now.
    That transaction then has no storage work left (on SQLite it stops every other writer
    while it runs). Returns whether the bytes became the blob; nothing points at it until
    the transaction commits, and a session whose transaction fails finds its bytes gone and
    is dropped, so its client starts again."""
    upload = appender.upload
    store.sync_upload(upload.uuid, state)
    algorithm, _, hex_digest = digest.partition(":")
    if algorithm != "sha256" or appender.hasher.copy().hexdigest() != hex_digest:
        return False
    if store.blob_size(digest) is not None:
        return False
    store.commit_upload(upload.uuid, state, digest)
    return True


def complete_appended(
    session: Session,
    appender: Appender,
    store: BlobStore,
    state: dict[str, Any],
    digest: str,
    *,
    grace: dt.timedelta = blobs.UNREFERENCED_BLOB_GRACE,
    published: bool = False,
) -> blobs.BlobRef:
    """Complete the session with the append `appender` just finished (`state`), in one
    transaction: a monolithic upload is one request and one commit. The row is not updated
    with the append, only deleted, under the same guard as record_progress. The caller ran
    prepare_completion before its transaction began (`published` is what it returned),
    commits, then releases the appender. On a digest mismatch the session is cancelled and
    nothing is kept."""
    if not blobs.is_valid_digest(digest):
        raise DigestMismatch("invalid digest", digest)
    # Not into the hasher cache: the append is never recorded if this transaction fails, and
    # another process may record different bytes up to the same length.
    _advance(appender, state)
    if published:
        return _complete_published(session, store, appender.upload, digest, grace, appender.start)
    return _complete_held(
        session,
        store,
        appender.upload,
        digest,
        grace,
        start=appender.start,
        synced=True,
        sha256=appender.hasher,
    )


def _delete_row(session: Session, upload: UploadRow, start: int) -> None:
    """Delete the session's row if it still records `start` bytes; UploadInvalid if not
    (another request recorded an append, or the session was cancelled)."""
    begin_write(session)
    result = session.connection().execute(
        _DELETE_UPLOAD_AT, {"upload_id": upload.id, "start": start}
    )
    if result.rowcount != 1:
        raise UploadInvalid("the upload was changed by another request")


def _complete_published(
    session: Session,
    store: BlobStore,
    upload: UploadRow,
    digest: str,
    grace: dt.timedelta,
    start: int,
) -> blobs.BlobRef:
    """Record a blob whose bytes prepare_completion already put in storage."""
    _delete_row(session, upload, start)
    # Locked, as in _complete_held: GC removes a blob's bytes only under this lock.
    blob = blobs.ensure_blob(session, digest, upload.byte_count)
    if store.blob_size(digest) is None:
        raise UploadInvalid("the upload's data was removed as it completed; start again")
    _hashers.forget(upload.uuid)
    blobs.link_blob(session, upload.repository_id, blob.id, expires_at=blobs.grace_deadline(grace))
    return blob


def _complete_held(
    session: Session,
    store: BlobStore,
    upload: UploadRow,
    digest: str,
    grace: dt.timedelta,
    *,
    start: int,
    synced: bool,
    sha256=None,
) -> blobs.BlobRef:
    algorithm = digest.split(":", 1)[0]
    actual = _digest_of(store, upload, algorithm, sha256)
    if actual != digest:
        _delete_row(session, upload, start)
        _drop_bytes(store, upload)
        raise DigestMismatch(f"upload content has digest {actual}, not {digest}", digest)
    if not synced:
        # Before the write lock below: on SQLite that lock stops every writer, so it is not
        # held while the disk catches up.
        store.sync_upload(upload.uuid, _state(upload))
    _delete_row(session, upload, start)
    # The blob's row locked: GC deletes a blob's bytes only while holding that lock, so the
    # storage check below cannot see bytes that are about to vanish.
    blob = blobs.ensure_blob(session, digest, upload.byte_count)
    state = _state(upload)
    if store.blob_size(digest) is None:
        store.commit_upload(upload.uuid, state, digest)
    else:
        store.cancel_upload(upload.uuid, state)
    _hashers.forget(upload.uuid)
    blobs.link_blob(session, upload.repository_id, blob.id, expires_at=blobs.grace_deadline(grace))
    return blob


def check_quota(
    session: Session,
    settings: Settings,
    store: BlobStore,
    repository: RepositoryRef,
    upload_uuid: str,
    incoming: int,
) -> None:
    """Refuse data that would take the namespace over a Reject limit, dropping the upload
    (the caller commits that with the refusal's notice). An unknown upload is UploadUnknown
    rather than a refusal."""
    try:
        quota.check_upload_data(session, settings, repository.namespace_id, repository.id, incoming)
    except quota.QuotaExceeded:
        cancel_upload(session, store, require_upload(session, repository.id, upload_uuid))
        raise


def _drop_bytes(store: BlobStore, upload: UploadRow) -> None:
    store.cancel_upload(upload.uuid, _state(upload))
    _hashers.forget(upload.uuid)


def cancel_upload(session: Session, store: BlobStore, upload: UploadRow) -> None:
    _drop_bytes(store, upload)
    session.connection().execute(_DELETE_UPLOAD, {"upload_id": upload.id})
