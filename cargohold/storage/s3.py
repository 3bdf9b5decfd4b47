"""S3Storage and RadosGWStorage: blobs as objects in one bucket of any S3-compatible store.

Upload sessions are written as a list of part objects under `uploads/<id>/`. Every part but
the last is at least S3's minimum multipart part size, so commit can assemble them server-side
with a multipart upload (UploadPartCopy) straight onto the blob's digest key: the object only
appears there when CompleteMultipartUpload succeeds, and no byte crosses the network twice.
Part objects (unlike the parts of an unfinished multipart upload) can be read back, which
`read_upload` needs. A short last part (the "tail") is re-read and rewritten by the next
request, so clients may send chunks of any size.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cargohold.storage.base import (
    BlobNotFound,
    BlobStore,
    StorageError,
    UploadDataLost,
    UploadHold,
    UploadState,
    UploadWriter,
)

log = logging.getLogger(__name__)

MIB = 1 << 20
# S3 refuses multipart parts below 5 MiB, except the last one.
MIN_PART_SIZE = 5 * MIB
PART_SIZE = 8 * MIB
# S3 allows at most 10,000 parts; growing the part size keeps any blob under that.
PARTS_PER_SIZE_STEP = 1000
READ_CHUNK = MIB
COPY_THREADS = 8
PRESIGNED_URL_EXPIRY_S = 600
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


def part_size_for(index: int) -> int:
    """Target size of the part at position `index` (0-based) of an upload."""
    return PART_SIZE * (1 + index // PARTS_PER_SIZE_STEP)


def _not_found(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _NOT_FOUND_CODES


class _PartWriter(UploadWriter):
    """Buffers at most one part in memory and stores each full part as its own object."""

    def __init__(self, store: S3Storage, upload_id: str, state: UploadState) -> None:
        self._store = store
        self._upload_id = upload_id
        self._parts: list[dict[str, Any]] = list(state.get("parts", []))
        self._stale: list[str] = []
        self._written: list[str] = []
        self._buffer = bytearray()
        if self._parts and self._parts[-1]["size"] < MIN_PART_SIZE:
            # A short tail cannot stay in the middle of the upload: it is merged with the
            # new bytes and written again under a fresh key.
            tail = self._parts.pop()
            self._buffer += b"".join(store._read_key(tail["key"]))
            self._stale.append(tail["key"])

    def write(self, data: bytes) -> None:
        self._buffer += data
        target = part_size_for(len(self._parts))
        while len(self._buffer) >= target:
            # Hand the buffer itself over and copy only the (small) overflow: one part in
            # memory per writer, not two.
            part, self._buffer = self._buffer, bytearray(self._buffer[target:])
            del part[target:]
            self._flush(part)
            target = part_size_for(len(self._parts))

    def _flush(self, data: bytes | bytearray) -> None:
        key = self._store._part_key(self._upload_id, len(self._parts))
        self._written.append(key)
        self._store._put(key, data)
        self._parts.append({"key": key, "size": len(data)})

    def close(self) -> UploadState:
        if self._buffer:
            part, self._buffer = self._buffer, bytearray()
            self._flush(part)
        # Replaced tails are deleted only once the caller has persisted this state (at the
        # next open, commit or cancel), so a failed database commit never loses bytes.
        return {"parts": self._parts, "stale": self._stale}

    def abort(self) -> None:
        self._buffer.clear()
        for key in self._written:
            self._store._delete_key(key)
        self._written.clear()


class _PartsHold(UploadHold):
    """S3 sessions need no exclusive writer: a request writes only parts under fresh keys, and
    the recorded state names just the parts of recorded requests. Parts of a request that died
    are never named, so never read; they go with the session's prefix at commit or cancel."""

    def trim(self, state: UploadState, size: int) -> None:
        recorded = sum(part["size"] for part in state.get("parts", []))
        if recorded != size:
            raise UploadDataLost(f"upload parts hold {recorded} bytes, {size} were recorded")

    def release(self) -> None:
        return None


class S3Storage(BlobStore):
    """Quay's S3Storage parameters: s3_bucket, storage_path, s3_access_key, s3_secret_key,
    optional host/port (or endpoint_url) for S3-compatible services, and s3_region."""

    def __init__(
        self,
        s3_bucket: str,
        storage_path: str = "",
        s3_access_key: str | None = None,
        s3_secret_key: str | None = None,
        host: str | None = None,
        port: int | str | None = None,
        is_secure: bool = True,
        s3_region: str | None = None,
        endpoint_url: str | None = None,
        signature_version: str = "s3v4",
        direct_download: bool = True,
        presigned_url_expiry: int = PRESIGNED_URL_EXPIRY_S,
        max_pool_connections: int = 32,
        **ignored: Any,
    ) -> None:
        for name in sorted(ignored):
            log.warning("S3 storage parameter %s is not used by cargohold and is ignored", name)
        if endpoint_url is None and host:
            scheme = "https" if is_secure else "http"
            endpoint_url = f"{scheme}://{host}" + (f":{port}" if port else "")
        self.bucket = s3_bucket
        self.prefix = storage_path.strip("/")
        self.direct_download = direct_download
        self.presigned_url_expiry = int(presigned_url_expiry)
        config = Config(
            signature_version=signature_version,
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            retries={"max_attempts": 4, "mode": "standard"},
            max_pool_connections=max_pool_connections,
            connect_timeout=10,
            read_timeout=120,
            # Trailing checksums are not understood by every S3-compatible server.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=s3_access_key,
            aws_secret_access_key=s3_secret_key,
            region_name=s3_region or "us-east-1",
            config=config,
        )

    # --- key layout ------------------------------------------------------------------
    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _blob_key(self, digest: str) -> str:
        algorithm, _, hex_digest = digest.partition(":")
        if not algorithm or not hex_digest or "/" in digest or ".." in digest:
            raise BlobNotFound(digest)
        return self._key(f"{algorithm}/{hex_digest[:2]}/{hex_digest}")

    def _upload_prefix(self, upload_id: str) -> str:
        return self._key(f"uploads/{uuid.UUID(upload_id)}/")

    def _part_key(self, upload_id: str, index: int) -> str:
        # A fresh name per write: a retried or aborted request never overwrites a part that
        # the persisted state still points at.
        return f"{self._upload_prefix(upload_id)}{index:05d}-{secrets.token_hex(4)}"

    # --- object helpers --------------------------------------------------------------
    def _put(self, key: str, data: bytes | bytearray) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 put {key}: {exc}") from exc

    def _delete_key(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if not _not_found(exc):
                raise StorageError(f"S3 delete {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 delete {key}: {exc}") from exc

    def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            try:
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except (BotoCoreError, ClientError) as exc:
                raise StorageError(f"S3 delete: {exc}") from exc

    def _open(self, key: str, start: int = 0, end: int | None = None) -> Any:
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if start or end is not None:
            arguments["Range"] = f"bytes={start}-" + ("" if end is None else str(end - 1))
        try:
            return self.client.get_object(**arguments)["Body"]
        except ClientError as exc:
            if _not_found(exc):
                raise BlobNotFound(key) from exc
            raise StorageError(f"S3 get {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 get {key}: {exc}") from exc

    @staticmethod
    def _stream(body: Any) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(READ_CHUNK)
        except BotoCoreError as exc:
            raise StorageError(f"S3 read: {exc}") from exc
        finally:
            body.close()

    def _read_key(self, key: str) -> Iterator[bytes]:
        return self._stream(self._open(key))

    # --- finished blobs --------------------------------------------------------------
    def blob_size(self, digest: str) -> int | None:
        try:
            key = self._blob_key(digest)
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except BlobNotFound:
            return None
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise StorageError(f"S3 head {digest}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 head {digest}: {exc}") from exc

    def read_blob(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        key = self._blob_key(digest)
        if end is not None and end <= start:
            # S3 has no empty range; check existence so a missing blob still raises.
            if self.blob_size(digest) is None:
                raise BlobNotFound(digest)
            return iter(())
        try:
            body = self._open(key, start, end)
        except BlobNotFound as exc:
            raise BlobNotFound(digest) from exc
        return self._stream(body)

    def put_blob(self, digest: str, data: bytes) -> None:
        self._put(self._blob_key(digest), data)

    def delete_blob(self, digest: str) -> None:
        with contextlib.suppress(BlobNotFound):
            self._delete_key(self._blob_key(digest))

    def blob_download_url(self, digest: str) -> str | None:
        if not self.direct_download:
            return None
        try:
            return self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._blob_key(digest)},
                ExpiresIn=self.presigned_url_expiry,
            )
        except BlobNotFound:
            return None

    # --- upload sessions -------------------------------------------------------------
    def begin_upload(self, upload_id: str) -> UploadState:
        self._upload_prefix(upload_id)  # validates the id
        return {"parts": [], "stale": []}

    def _drop_stale(self, state: UploadState) -> None:
        if state.get("stale"):
            self._delete_keys(list(state["stale"]))
            state["stale"] = []

    def hold_upload(self, upload_id: str) -> UploadHold:
        self._upload_prefix(upload_id)  # validates the id
        return _PartsHold()

    def open_upload(self, upload_id: str, state: UploadState) -> UploadWriter:
        if "parts" not in state:
            raise StorageError(f"upload {upload_id} has no S3 state")
        self._drop_stale(state)
        return _PartWriter(self, upload_id, state)

    def read_upload(self, upload_id: str, state: UploadState) -> Iterator[bytes]:
        keys = [part["key"] for part in state.get("parts", [])]

        def chain() -> Iterator[bytes]:
            for key in keys:
                yield from self._read_key(key)

        return chain()

    def commit_upload(self, upload_id: str, state: UploadState, digest: str) -> None:
        target = self._blob_key(digest)
        parts = list(state.get("parts", []))
        if not parts:
            self._put(target, b"")
        elif len(parts) == 1:
            self._copy(parts[0]["key"], target)
        else:
            self._assemble(parts, target)
        self.cancel_upload(upload_id, state)

    def _copy(self, source: str, target: str) -> None:
        try:
            self.client.copy_object(
                Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": source}
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 copy {source} -> {target}: {exc}") from exc

    def _assemble(self, parts: list[dict[str, Any]], target: str) -> None:
        try:
            multipart = self.client.create_multipart_upload(Bucket=self.bucket, Key=target)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 multipart start {target}: {exc}") from exc
        mpu_id = multipart["UploadId"]

        def copy_part(numbered: tuple[int, dict[str, Any]]) -> dict[str, Any]:
            number, part = numbered
            result = self.client.upload_part_copy(
                Bucket=self.bucket,
                Key=target,
                UploadId=mpu_id,
                PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": part["key"]},
            )
            return {"PartNumber": number, "ETag": result["CopyPartResult"]["ETag"]}

        try:
            with ThreadPoolExecutor(max_workers=COPY_THREADS) as pool:
                completed = list(pool.map(copy_part, enumerate(parts, start=1)))
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=target,
                UploadId=mpu_id,
                MultipartUpload={"Parts": completed},
            )
        except (BotoCoreError, ClientError) as exc:
            with contextlib.suppress(BotoCoreError, ClientError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=target, UploadId=mpu_id)
            raise StorageError(f"S3 multipart assembly of {target}: {exc}") from exc

    def cancel_upload(self, upload_id: str, state: UploadState) -> None:
        keys = [part["key"] for part in state.get("parts", [])] + list(state.get("stale", []))
        # Listing also catches parts of requests whose state was never persisted.
        keys += self._list(self._upload_prefix(upload_id))
        if keys:
            self._delete_keys(sorted(set(keys)))

    def _list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 list {prefix}: {exc}") from exc
        return keys

    # --- health ----------------------------------------------------------------------
    def check(self) -> None:
        key = self._key(f"health/{uuid.uuid4().hex}")
        try:
            self._put(key, b"ok")
            if b"".join(self._read_key(key)) != b"ok":
                raise StorageError("storage returned different bytes")
        except BlobNotFound as exc:
            raise StorageError(f"S3 lost the probe object {key}") from exc
        finally:
            with contextlib.suppress(StorageError):
                self._delete_key(key)


class RadosGWStorage(S3Storage):
    """Quay's RadosGWStorage parameters: hostname, port, is_secure, access_key, secret_key,
    bucket_name, storage_path (any S3-compatible service at a custom endpoint)."""

    def __init__(
        self,
        hostname: str,
        bucket_name: str,
        storage_path: str = "",
        access_key: str | None = None,
        secret_key: str | None = None,
        is_secure: bool = True,
        port: int | str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            s3_bucket=bucket_name,
            storage_path=storage_path,
            s3_access_key=access_key,
            s3_secret_key=secret_key,
            host=hostname,
            port=port,
            is_secure=is_secure,
            **options,
        )
