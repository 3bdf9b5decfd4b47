"""Blobs and blob uploads: pulls with Range, monolithic and chunked pushes, mounts, deletes."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from cargohold.domain import blobs, proxy_pull, quota, repositories, uploads
from cargohold.domain.proxy_cache import Upstream
from cargohold.domain.proxy_upstream import UpstreamError
from cargohold.domain.repositories import RepositoryRef
from cargohold.registry import proxy
from cargohold.registry.context import Registry, RepoPath
from cargohold.registry.errors import RegistryError
from cargohold.registry.http import Request, send, send_file, send_stream
from cargohold.registry.tokens import Identity
from cargohold.storage.base import BlobNotFound

log = logging.getLogger(__name__)
T = TypeVar("T")
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CONTENT_RANGE_RE = re.compile(r"^(?:bytes[= ])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")


def _check_digest(digest: str) -> None:
    if not blobs.is_valid_digest(digest):
        raise RegistryError("DIGEST_INVALID", "invalid digest", {"digest": digest})


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) for a single `bytes=` range; None for the whole blob."""
    if not header:
        return None
    match = _RANGE_RE.match(header.strip())
    unsatisfiable = RegistryError(
        "RANGE_INVALID", status=416, headers={"Content-Range": f"bytes */{size}"}
    )
    if match is None or (not match.group(1) and not match.group(2)):
        raise unsatisfiable
    if not match.group(1):
        # A suffix of zero bytes, or any suffix of an empty blob, selects nothing.
        suffix = int(match.group(2))
        if suffix == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - suffix), size
    start = int(match.group(1))
    end = int(match.group(2)) + 1 if match.group(2) else size
    end = min(end, size)
    if start >= size or start >= end:
        raise unsatisfiable
    return start, end


async def get_blob(reg: Registry, request: Request, send_fn, path: RepoPath, digest: str) -> None:
    head = request.method == "HEAD"
    identity = await reg.access(request, path, "pull")
    _check_digest(digest)

    def lookup() -> tuple[int | None, RepositoryRef, Upstream | None]:
        with reg.session_factory() as session:
            repo = reg.repository(session, path, identity, "pull")
            blob = blobs.repository_blob(session, repo.id, digest)
            upstream = proxy.namespace_upstream(reg, session, path.namespace)
            if blob is None and upstream is None:
                raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
            return (blob.size if blob is not None else None), repo, upstream

    size, repo, upstream = await reg.run(lookup)
    if upstream is not None and not (head and size is not None):
        # A proxy cache may know a blob (from its manifest) before it holds the bytes.
        fetch = await _proxy_fetch(reg, path, identity, repo, digest, upstream, size)
        if fetch is not None:
            await _send_fetched(reg, request, send_fn, digest, fetch, head)
            return
        if size is None:
            size = await reg.run(reg.store.blob_size, digest)
            assert size is not None
    headers = {
        "Docker-Content-Digest": digest,
        "ETag": f'"{digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
    }
    if head:
        await _send_blob_head(send_fn, headers, size)
        return
    url = reg.store.blob_download_url(digest)
    if url is not None:
        await send(send_fn, 307, b"", {**headers, "Location": url})
        return
    window = _byte_range(request.header(b"range"), size)
    start, end = window if window is not None else (0, size)
    status = 200
    if window is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    handle = None
    if request.offers_zero_copy():
        handle = await reg.run(_stored_blob, reg.store.open_blob_file, digest)
    if handle is not None:
        with handle:
            await send_file(
                send_fn,
                status,
                headers,
                handle,
                start,
                end - start,
                content_type="application/octet-stream",
            )
        return
    chunks = await reg.run(_stored_blob, reg.store.read_blob, digest, start, end)
    await send_stream(
        send_fn,
        reg.executor,
        status,
        headers,
        end - start,
        chunks,
        content_type="application/octet-stream",
    )


async def _proxy_fetch(
    reg: Registry,
    path: RepoPath,
    identity: Identity,
    repo: RepositoryRef,
    digest: str,
    upstream: Upstream,
    size: int | None,
) -> proxy_pull.BlobFetch | None:
    """None once the blob is in storage (and linked); else this request's upstream fetch."""
    # Storage is asked one pull at a time per digest (in `obtain_blob`): concurrent pulls of a
    # blob being fetched wait for it without each taking a thread.
    if await proxy.obtain_blob(reg, digest):
        if size is None:
            await reg.run(proxy_pull.link, reg.session_factory, reg.store, repo.id, digest)
        return None
    fetch = proxy_pull.BlobFetch(
        reg.settings, reg.session_factory, reg.store, upstream, repo, path.name, digest
    )
    try:
        proxy.check_caller(reg, path, identity)
        await reg.run(fetch.open, size)
    except BaseException:
        await reg.run(fetch.close)
        proxy.finish(digest)
        raise
    return fetch


async def _send_fetched(
    reg: Registry, request: Request, send_fn, digest: str, fetch: proxy_pull.BlobFetch, head: bool
) -> None:
    """Stream a blob from upstream to the client while storing it (HEAD stores it all first)."""
    headers = {"Docker-Content-Digest": digest, "ETag": f'"{digest}"'}
    chunks = fetch.chunks()
    # One thread reads the upstream and fills the storage buffers: spread over the pool's
    # threads, each would grow its own malloc arena with part-sized buffers.
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="proxy-fetch")
    loop = asyncio.get_running_loop()
    try:
        if head:
            await loop.run_in_executor(worker, _drain, chunks)
            await _send_blob_head(send_fn, headers, fetch.size)
            return
        try:
            await send_stream(
                send_fn,
                worker,
                200,
                headers,
                fetch.size,
                chunks,
                content_type="application/octet-stream",
            )
        except UpstreamError as exc:
            # The status is sent: ending the response short is all that is left to tell the
            # client, and nothing was stored.
            log.warning("pull-through of %s failed: %s", digest, exc)
    finally:
        # A generator that never started does not run its own clean-up.
        try:
            await loop.run_in_executor(worker, fetch.close)
        finally:
            proxy.finish(digest)
            worker.shutdown(wait=False)


async def _send_blob_head(send_fn, headers: dict[str, str], size: int) -> None:
    """A blob's HEAD answer: its headers and length, no body."""
    await send(
        send_fn,
        200,
        b"",
        headers,
        content_type="application/octet-stream",
        head=True,
        content_length=size,
    )


def _stored_blob(read: Callable[..., T], digest: str, *args: int) -> T:
    """`read(digest, *args)`, with storage's missing blob answered as the registry's."""
    try:
        return read(digest, *args)
    except BlobNotFound as exc:
        raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest}) from exc


def _drain(chunks) -> None:
    for _ in chunks:
        pass


async def delete_blob(
    reg: Registry, request: Request, send_fn, path: RepoPath, digest: str
) -> None:
    identity = await reg.access(request, path, "push")
    _check_digest(digest)

    def remove() -> None:
        with reg.session_factory() as session:
            repo = reg.repository(session, path, identity, "push")
            if not blobs.unlink_blob(session, repo.id, digest):
                raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
            session.commit()

    await reg.run(remove)
    await send(send_fn, 202)


def _upload_headers(path: RepoPath, upload_uuid: str, byte_count: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{path.full}/blobs/uploads/{upload_uuid}",
        "Range": f"0-{max(byte_count - 1, 0)}",
        "Docker-Upload-UUID": upload_uuid,
    }


def _blob_created(path: RepoPath, digest: str) -> dict[str, str]:
    return {"Location": f"/v2/{path.full}/blobs/{digest}", "Docker-Content-Digest": digest}


def _has_body(request: Request) -> bool:
    length = request.content_length
    if length is not None:
        return length > 0
    return "chunked" in (request.header(b"transfer-encoding") or "").lower()


def _content_range_start(request: Request) -> int | None:
    header = request.header(b"content-range")
    if not header:
        return None
    match = _CONTENT_RANGE_RE.match(header.strip())
    if match is None:
        raise RegistryError("RANGE_INVALID", "invalid Content-Range", status=416)
    start, end = int(match.group(1)), int(match.group(2))
    length = request.content_length
    if end < start or (length is not None and length != end - start + 1):
        raise RegistryError("RANGE_INVALID", "Content-Range does not match the body", status=416)
    return start


async def _append(
    reg: Registry, request: Request, path: RepoPath, appender: uploads.Appender
) -> None:
    """Stream the request body into the session and record it; on failure undo the bytes."""
    await _receive(reg, request, appender)

    def record() -> None:
        try:
            state = appender.finish()
            with reg.session_factory() as session:
                uploads.record_progress(session, appender, state)
                session.commit()
        finally:
            appender.release()

    await reg.run(record)


async def _receive(reg: Registry, request: Request, appender: uploads.Appender) -> None:
    """Stream the request body into the session; on failure undo the bytes."""
    try:
        received = await request.stream_body(reg.executor, appender.write)
    except BaseException:
        await reg.run(appender.abort)
        raise
    expected = request.content_length
    if expected is not None and received != expected:
        await reg.run(appender.abort)
        raise RegistryError("SIZE_INVALID", detail={"expected": expected, "received": received})


def _open_session(
    reg: Registry,
    path: RepoPath,
    identity: Identity,
    upload_uuid: str,
    start: int | None,
    incoming: int,
) -> tuple[RepositoryRef, uploads.Appender]:
    with reg.session_factory() as session, reg.refusals_kept(session):
        repo = reg.repository(session, path, identity, "push")
        uploads.check_quota(session, reg.settings, reg.store, repo, upload_uuid, incoming)
        return repo, uploads.open_appender(session, reg.store, repo.id, upload_uuid, start)


def _upload_grace(reg: Registry) -> dt.timedelta:
    return dt.timedelta(seconds=reg.settings.BLOB_UPLOAD_GRACE_SEC)


def _complete(
    reg: Registry,
    path: RepoPath,
    identity: Identity,
    upload_uuid: str,
    digest: str,
) -> None:
    with reg.session_factory() as session, reg.refusals_kept(session):
        repo = reg.repository(session, path, identity, "push")
        uploads.check_quota(session, reg.settings, reg.store, repo, upload_uuid, 0)
        uploads.complete_upload(
            session, reg.store, repo.id, upload_uuid, digest, grace=_upload_grace(reg)
        )
        session.commit()


def _complete_appended(
    reg: Registry,
    repo: RepositoryRef,
    appender: uploads.Appender,
    digest: str,
    counted: bool,
) -> None:
    """Record the request's bytes and make the blob, in one transaction. The repository was
    checked when the upload was opened; `counted`: so were the body's bytes against quota."""
    try:
        state = appender.finish()
        published = uploads.prepare_completion(reg.store, appender, state, digest)
        with reg.session_factory() as session, reg.refusals_kept(session):
            if not counted:
                # A body of unannounced length: its size is known only now.
                uploads.check_quota(
                    session, reg.settings, reg.store, repo, appender.upload.uuid, appender.received
                )
            uploads.complete_appended(
                session,
                appender,
                reg.store,
                state,
                digest,
                grace=_upload_grace(reg),
                published=published,
            )
            session.commit()
    finally:
        appender.release()


async def start_upload(reg: Registry, request: Request, send_fn, path: RepoPath) -> None:
    identity = await reg.access(request, path, "push")
    mount = request.arg("mount")
    source = request.arg("from")
    digest = request.arg("digest")
    if mount and source and blobs.is_valid_digest(mount):
        mounted = await reg.run(_mount, reg, path, identity, mount, source)
        if mounted:
            await send(send_fn, 201, b"", _blob_created(path, mount))
            return
    if digest is not None:
        _check_digest(digest)

    def begin() -> tuple[RepositoryRef, str, uploads.Appender | None]:
        with reg.session_factory() as session:
            repo = reg.repository(session, path, identity, "push")
            with reg.refusals_kept(session):
                quota.check_upload_start(session, reg.settings, repo.namespace_id)
                if digest:
                    quota.check_upload_data(
                        session,
                        reg.settings,
                        repo.namespace_id,
                        repo.id,
                        request.content_length or 0,
                    )
            upload = uploads.start_upload(session, reg.store, repo.id)
            session.commit()
            if not digest:
                return repo, upload.uuid, None
            return (
                repo,
                upload.uuid,
                uploads.open_appender(session, reg.store, repo.id, upload.uuid, 0),
            )

    repo, upload_uuid, appender = await reg.run(begin)
    if digest is None:
        await send(send_fn, 202, b"", _upload_headers(path, upload_uuid, 0))
        return
    assert appender is not None
    await _receive(reg, request, appender)
    counted = request.content_length is not None
    await reg.run(_complete_appended, reg, repo, appender, digest, counted)
    await send(send_fn, 201, b"", _blob_created(path, digest))


def _mount(reg: Registry, path: RepoPath, identity: Identity, digest: str, source: str) -> bool:
    try:
        source_path = reg.repo_path(source)
    except RegistryError:
        return False
    with reg.session_factory() as session:
        repo = reg.repository(session, path, identity, "push")
        source_ref = repositories.find_repository_ref(
            session, source_path.namespace, source_path.name
        )
        if source_ref is None:
            return False
        with reg.refusals_kept(session):
            quota.check_upload_start(session, reg.settings, repo.namespace_id)
        readable = identity.may(source_path.full, "pull") or (
            source_ref.public and reg.settings.FEATURE_ANONYMOUS_ACCESS
        )
        if not readable:
            return False
        if (
            blobs.mount_blob(session, source_ref.id, repo.id, digest, grace=_upload_grace(reg))
            is None
        ):
            return False
        session.commit()
        return True


async def patch_upload(
    reg: Registry, request: Request, send_fn, path: RepoPath, upload_uuid: str
) -> None:
    identity = await reg.access(request, path, "push")
    start = _content_range_start(request)
    _, appender = await reg.run(
        _open_session, reg, path, identity, upload_uuid, start, request.content_length or 0
    )
    await _append(reg, request, path, appender)
    total = appender.start + appender.received
    await send(send_fn, 202, b"", _upload_headers(path, upload_uuid, total))


async def put_upload(
    reg: Registry, request: Request, send_fn, path: RepoPath, upload_uuid: str
) -> None:
    identity = await reg.access(request, path, "push")
    digest = request.arg("digest")
    if not digest:
        raise RegistryError("DIGEST_INVALID", "digest parameter is missing")
    _check_digest(digest)
    if _has_body(request):
        start = _content_range_start(request)
        repo, appender = await reg.run(
            _open_session, reg, path, identity, upload_uuid, start, request.content_length or 0
        )
        await _receive(reg, request, appender)
        counted = request.content_length is not None
        await reg.run(_complete_appended, reg, repo, appender, digest, counted)
    else:
        await reg.run(_complete, reg, path, identity, upload_uuid, digest)
    await send(send_fn, 201, b"", _blob_created(path, digest))


async def upload_status(
    reg: Registry, request: Request, send_fn, path: RepoPath, upload_uuid: str
) -> None:
    identity = await reg.access(request, path, "push")

    def lookup() -> int:
        with reg.session_factory() as session, reg.refusals_kept(session):
            repo = reg.repository(session, path, identity, "push")
            return uploads.recorded_length(session, reg.store, repo.id, upload_uuid)

    count = await reg.run(lookup)
    await send(send_fn, 204, b"", _upload_headers(path, upload_uuid, count))


async def cancel_upload(
    reg: Registry, request: Request, send_fn, path: RepoPath, upload_uuid: str
) -> None:
    identity = await reg.access(request, path, "push")

    def cancel() -> None:
        with reg.session_factory() as session:
            repo = reg.repository(session, path, identity, "push")
            upload = uploads.require_upload(session, repo.id, upload_uuid)
            uploads.cancel_upload(session, reg.store, upload)
            session.commit()

    await reg.run(cancel)
    await send(send_fn, 204)
