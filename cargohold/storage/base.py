"""The storage-driver interface. Callers name blobs by digest; drivers own the layout.

All methods are blocking and may be called from worker threads. Nothing a driver writes is
visible under a blob's name until it is complete (write-then-rename, or a completed S3
multipart upload).
"""

from __future__ import annotations

import hashlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, BinaryIO

UploadState = dict[str, Any]


class StorageError(Exception):
    """The storage backend failed (I/O error, unreachable object store)."""


class BlobNotFound(StorageError):
    pass


class UploadBusy(StorageError):
    """Another request holds the upload session's bytes."""


class UploadDataLost(StorageError):
    """Storage holds fewer bytes of an upload session than were recorded, or none at all."""


class UploadWriter(ABC):
    """Appends bytes to an upload session; `close()` returns the state to persist."""

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def close(self) -> UploadState:
        """Flush everything written so far and return the driver state for the next request."""

    @abstractmethod
    def abort(self) -> None:
        """Forget what this writer wrote (the request failed); the session stays as it was."""


class UploadHold(ABC):
    """The exclusive right to change an upload session's stored bytes, until `release()`.

    A request that dies mid-body (kill -9, power loss) leaves bytes that were never recorded;
    whoever holds the session next cuts them with `trim()` before reading or appending.
    """

    @abstractmethod
    def trim(self, state: UploadState, size: int) -> None:
        """Make the session's stored bytes exactly its first `size` (the recorded length).

        Raises UploadDataLost when storage holds fewer than `size` bytes.
        """

    @abstractmethod
    def release(self) -> None:
        """Give the hold up; releasing twice is not an error."""


class BlobStore(ABC):
    # --- finished blobs --------------------------------------------------------------
    @abstractmethod
    def blob_size(self, digest: str) -> int | None:
        """Size in bytes, or None when storage has no such blob."""

    @abstractmethod
    def read_blob(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes [start, end) of a blob (end None = to the end). Raises BlobNotFound."""

    @abstractmethod
    def put_blob(self, digest: str, data: bytes) -> None:
        """Store a small blob in one call (used by tools and tests, not by client pushes)."""

    @abstractmethod
    def delete_blob(self, digest: str) -> None:
        """Remove a blob; deleting a missing blob is not an error."""

    def open_blob_file(self, digest: str) -> BinaryIO | None:
        """The blob as an open local file, for sending without copies through Python; None
        where storage keeps no local files. Raises BlobNotFound."""
        return None

    def blob_download_url(self, digest: str) -> str | None:
        """A URL clients may be redirected to for GET (presigned S3), or None to stream."""
        return None

    # --- upload sessions -------------------------------------------------------------
    @abstractmethod
    def begin_upload(self, upload_id: str) -> UploadState: ...

    @abstractmethod
    def hold_upload(self, upload_id: str) -> UploadHold:
        """Hold a session's bytes for one request: to append to them, trim them or commit them.

        Raises UploadBusy while another request holds them, UploadDataLost when the session
        has no bytes in storage (cancelled or committed meanwhile).
        """

    @abstractmethod
    def open_upload(self, upload_id: str, state: UploadState) -> UploadWriter:
        """A writer appending after the bytes already in the session."""

    @abstractmethod
    def read_upload(self, upload_id: str, state: UploadState) -> Iterator[bytes]:
        """Stream the bytes received so far (used to rebuild a digest in another process)."""

    def sync_upload(self, upload_id: str, state: UploadState) -> None:  # noqa: B027
        """Make the session's bytes durable; called before commit_upload, and before the
        database is locked for that commit so that the lock is not held while the disk
        catches up."""

    @abstractmethod
    def commit_upload(self, upload_id: str, state: UploadState, digest: str) -> None:
        """Make the session's bytes (synced by sync_upload) the blob `digest`, atomically and
        durably; then drop the session."""

    @abstractmethod
    def cancel_upload(self, upload_id: str, state: UploadState) -> None:
        """Drop the session's bytes; cancelling twice is not an error."""

    # --- health ----------------------------------------------------------------------
    @abstractmethod
    def check(self) -> None:
        """Raise StorageError unless the backend can be written and read right now."""


class DigestedUpload:
    """A fresh upload session that hashes what is written, to be stored under its digest."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.upload_id = str(uuid.uuid4())
        self.state = store.begin_upload(self.upload_id)
        self._writer = store.open_upload(self.upload_id, self.state)
        self._sha256 = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._writer.write(chunk)
        self._sha256.update(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        self.state = self._writer.close()

    def abort(self) -> None:
        self._writer.abort()
        self.store.cancel_upload(self.upload_id, self.state)

    @property
    def digest(self) -> str:
        return "sha256:" + self._sha256.hexdigest()

    def sync(self) -> None:
        self.store.sync_upload(self.upload_id, self.state)

    def commit(self) -> str:
        """Store the closed session as the blob named by its digest; that digest."""
        self.store.commit_upload(self.upload_id, self.state, self.digest)
        return self.digest
