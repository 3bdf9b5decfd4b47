"""LocalStorage: blobs as files under one folder, written to a temporary name then renamed."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cargohold.storage.base import (
    BlobNotFound,
    BlobStore,
    StorageError,
    UploadBusy,
    UploadDataLost,
    UploadHold,
    UploadState,
    UploadWriter,
)

READ_CHUNK = 1 << 20
# Bytes an upload appends between two starts of their write-back.
WRITEBACK_STEP = 8 << 20
_SYNC_FILE_RANGE_WRITE = 2


def _load_sync_file_range():
    """libc's sync_file_range (Linux), or None where there is none."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing a range to disk, without waiting for it: the sync when
    the upload becomes a blob then waits only for the last bytes, not for all of them."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _FileAppender(UploadWriter):
    def __init__(self, path: Path) -> None:
        self._path = path
        self._handle = open(path, "ab")  # noqa: SIM115 - closed in close()/abort()
        self._start = self._handle.tell()
        self._end = self._written_back = self._start

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self._end += len(data)
        if self._end - self._written_back >= WRITEBACK_STEP:
            self._handle.flush()
            _start_writeback(
                self._handle.fileno(), self._written_back, self._end - self._written_back
            )
            self._written_back = self._end

    def close(self) -> UploadState:
        # No fsync: a session's bytes need to be durable only when they become a blob
        # (sync_upload). After a crash that lost recorded bytes, the next request finds
        # fewer bytes than recorded and drops the session, and the client starts again.
        self._handle.close()
        return {}

    def abort(self) -> None:
        self._handle.truncate(self._start)
        self._handle.close()


class _FileHold(UploadHold):
    """An exclusive flock on the session's data file.

    flock belongs to the open file, so it excludes other requests of this process as well as
    other processes on the host, and the kernel drops it when the holder dies (kill -9).
    """

    def __init__(self, path: Path) -> None:
        try:
            self._handle = open(path, "r+b", buffering=0)  # noqa: SIM115 - closed in release()
        except FileNotFoundError as exc:
            raise UploadDataLost(f"upload {path.name} has no data file") from exc
        try:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            # A commit may have renamed the file into a blob between our open and our lock:
            # that inode is no longer this session's and must not be touched.
            held, named = os.fstat(self._handle.fileno()), os.stat(path)
        except BlockingIOError as exc:
            self._handle.close()
            raise UploadBusy(f"upload {path.name} is being written") from exc
        except FileNotFoundError as exc:
            self._handle.close()
            raise UploadDataLost(f"upload {path.name} has no data file") from exc
        if (held.st_dev, held.st_ino) != (named.st_dev, named.st_ino):
            self._handle.close()
            raise UploadDataLost(f"upload {path.name} has no data file")

    def trim(self, state: UploadState, size: int) -> None:
        stored = os.fstat(self._handle.fileno()).st_size
        if stored < size:
            raise UploadDataLost(f"upload holds {stored} bytes, {size} were recorded")
        if stored > size:
            os.ftruncate(self._handle.fileno(), size)

    def release(self) -> None:
        # Closing the file drops the flock.
        self._handle.close()


class LocalStorage(BlobStore):
    def __init__(self, storage_path: str) -> None:
        self.root = Path(storage_path)
        self.blobs = self.root / "blobs"
        self.uploads = self.root / "uploads"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.uploads.mkdir(parents=True, exist_ok=True)

    def _blob_path(self, digest: str) -> Path:
        algorithm, _, hex_digest = digest.partition(":")
        if not hex_digest or "/" in digest or ".." in digest:
            raise BlobNotFound(digest)
        return self.blobs / algorithm / hex_digest[:2] / hex_digest

    def _upload_path(self, upload_id: str) -> Path:
        return self.uploads / str(uuid.UUID(upload_id))

    def blob_size(self, digest: str) -> int | None:
        try:
            return self._blob_path(digest).stat().st_size
        except (FileNotFoundError, BlobNotFound):
            return None

    def read_blob(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return self._stream(self.open_blob_file(digest), start, end)

    def open_blob_file(self, digest: str) -> BinaryIO:
        try:
            return open(self._blob_path(digest), "rb")  # noqa: SIM115
        except FileNotFoundError as exc:
            raise BlobNotFound(digest) from exc

    @staticmethod
    def _stream(handle, start: int, end: int | None) -> Iterator[bytes]:
        with handle:
            handle.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                data = handle.read(size)
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data

    def put_blob(self, digest: str, data: bytes) -> None:
        target = self._blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        _fsync_dir(target.parent)

    def delete_blob(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError, BlobNotFound):
            self._blob_path(digest).unlink()

    def begin_upload(self, upload_id: str) -> UploadState:
        self._upload_path(upload_id).touch()
        return {}

    def hold_upload(self, upload_id: str) -> UploadHold:
        return _FileHold(self._upload_path(upload_id))

    def open_upload(self, upload_id: str, state: UploadState) -> UploadWriter:
        path = self._upload_path(upload_id)
        if not path.exists():
            raise StorageError(f"upload {upload_id} has no data file")
        return _FileAppender(path)

    def read_upload(self, upload_id: str, state: UploadState) -> Iterator[bytes]:
        try:
            handle = open(self._upload_path(upload_id), "rb")  # noqa: SIM115
        except FileNotFoundError as exc:
            raise StorageError(f"upload {upload_id} has no data file") from exc
        return self._stream(handle, 0, None)

    def sync_upload(self, upload_id: str, state: UploadState) -> None:
        with open(self._upload_path(upload_id), "rb") as handle:
            os.fsync(handle.fileno())

    def commit_upload(self, upload_id: str, state: UploadState, digest: str) -> None:
        source = self._upload_path(upload_id)
        target = self._blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Same file system: the rename is atomic, so readers see all of the blob or nothing.
        os.replace(source, target)
        _fsync_dir(target.parent)

    def cancel_upload(self, upload_id: str, state: UploadState) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._upload_path(upload_id).unlink()

    def check(self) -> None:
        probe = self.root / f".health-{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"ok")
            if probe.read_bytes() != b"ok":
                raise StorageError("storage returned different bytes")
        except OSError as exc:
            raise StorageError(str(exc)) from exc
        finally:
            with contextlib.suppress(OSError):
                probe.unlink(missing_ok=True)

    def disk_usage(self) -> int:
        return shutil.disk_usage(self.root).free
