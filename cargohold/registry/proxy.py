"""Pull-through for proxy-cache organizations: what `org/<path>` misses comes from upstream.

Manifests are fetched, verified and stored with their tag, which lives `expiration_s` (as in
Quay); a pull of a tag that is missing or has expired asks the upstream again (HEAD first,
so an unchanged tag only gets a new lifetime), and when the upstream is down or failing the
last cached manifest of the tag is served. An index's child manifests are fetched with it
(they are small); every blob is fetched when first pulled.

A blob's layers get placeholder rows (digest and size, no bytes) when their manifest is
cached, as Quay does. The first pull of a blob claims a `proxy_blob_fetch` row for its digest,
so only one request in any process fetches it; that request streams the upstream's bytes to
its client and into a storage upload at once, and stores the blob only when its digest and
size verify. Other pulls of the same digest wait for the blob to appear, then read it from
storage.
"""

from __future__ import annotations

import asyncio
import ctypes
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cargohold.db.base import utcnow
from cargohold.db.models.accounts import User
from cargohold.db.models.proxy import ProxyBlobFetch, ProxyCacheConfig
from cargohold.db.models.registry import Manifest, Tag
from cargohold.domain import accounts, blobs, manifests, proxy_cache, repositories, tags
from cargohold.domain.proxy_cache import Upstream
from cargohold.domain.proxy_upstream import (
    UpstreamClient,
    UpstreamError,
    UpstreamUnavailable,
)
from cargohold.domain.repositories import RepositoryRef
from cargohold.registry.context import Registry, RepoPath
from cargohold.registry.errors import RegistryError
from cargohold.registry.tokens import Identity

# Pieces of a fetch are allocated on its thread, and storage buffers whole parts: glibc keeps
# such freed memory in the thread's arena unless asked to give it back.
TRIM_EVERY = 8 * 1024 * 1024
_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)

# A fetch whose claim has not been refreshed for this long died; another pull takes it over.
CLAIM_STALE = dt.timedelta(seconds=60)
CLAIM_REFRESH = dt.timedelta(seconds=10)
WAIT_STEP_S = 0.5
CHUNK = 256 * 1024


@dataclass(frozen=True)
class CachedManifest:
    repo: RepositoryRef
    digest: str
    media_type: str
    raw: bytes


def namespace_upstream(reg: Registry, session: Session, namespace: str) -> Upstream | None:
    """The upstream of a proxy-cache organization, or None (not one, or the feature is off)."""
    if not reg.settings.FEATURE_PROXY_CACHE:
        return None
    config = session.scalar(
        select(ProxyCacheConfig)
        .join(User, User.id == ProxyCacheConfig.organization_id)
        .where(User.username == namespace, User.organization.is_(True))
    )
    return proxy_cache.upstream_for(reg.settings, config) if config is not None else None


def check_caller(reg: Registry, path: RepoPath, identity: Identity) -> None:
    # Quay pulls through for the organization's members only; the token endpoint grants them
    # pull on repositories that do not exist yet.
    if identity.is_anonymous or not identity.may(path.full, "pull"):
        raise reg.unauthorized(path, "pull")


def _latest_cached(session: Session, repository_id: int, name: str) -> Manifest | None:
    """The manifest the tag last pointed at, alive or expired (served while upstream is down)."""
    return session.scalar(
        select(Manifest)
        .join(Tag, Tag.manifest_id == Manifest.id)
        .where(Tag.repository_id == repository_id, Tag.name == name, Tag.hidden.is_(False))
        .order_by(Tag.lifetime_start_ms.desc())
        .limit(1)
    )


def _end_ms(upstream: Upstream) -> int | None:
    # 0 means cached tags never expire, as in Quay.
    return tags.now_ms() + upstream.expiration_s * 1000 if upstream.expiration_s else None


def _parse(raw: bytes, content_type: str | None, expected: str | None) -> manifests.ParsedManifest:
    algorithm = expected.split(":", 1)[0] if expected else "sha256"
    digest = manifests.digest_of(raw, algorithm)
    if expected is not None and digest != expected:
        raise UpstreamError(f"manifest digest mismatch: expected {expected}, got {digest}")
    try:
        return manifests.parse_manifest(raw, content_type, digest=digest)
    except manifests.ManifestError as exc:
        raise UpstreamError(f"the upstream's manifest is invalid: {exc.message}") from exc


def _fetch(
    client: UpstreamClient, reference: str, expected: str | None
) -> tuple[manifests.ParsedManifest, list[manifests.ParsedManifest]]:
    """A manifest and, for an index, its child manifests, each verified by digest."""
    raw, content_type = client.manifest(reference)
    parsed = _parse(raw, content_type, expected)
    children = []
    for child in parsed.children:
        child_raw, child_type = client.manifest(child.digest)
        children.append(_parse(child_raw, child_type or child.media_type, child.digest))
    return parsed, children


def _store_image(session: Session, repository_id: int, parsed: manifests.ParsedManifest) -> int:
    """Store a manifest with placeholder rows for blobs this registry does not have yet."""
    for descriptor in parsed.blob_descriptors:
        blob = blobs.ensure_blob(session, descriptor.digest, descriptor.size)
        blobs.link_blob(session, repository_id, blob, expires_at=None)
    return manifests.store_manifest(session, repository_id, parsed).id


def _store(
    reg: Registry,
    path: RepoPath,
    reference: str,
    by_digest: bool,
    upstream: Upstream,
    parsed: manifests.ParsedManifest,
    children: list[manifests.ParsedManifest],
) -> RepositoryRef:
    with reg.session_factory() as session:
        namespace = accounts.get_namespace(session, path.namespace)
        if namespace is None:
            raise RegistryError("NAME_UNKNOWN", "repository not found", {"name": path.full})
        repository = repositories.find_or_create_repository(
            session, namespace, path.name, public=False, creator=None
        )
        if not parsed.is_index:
            size = sum(layer.size for layer in parsed.layers)
            with reg.refusals_kept(session, undo_writes=True):
                proxy_cache.make_room(session, reg.settings, namespace.id, size)
        for child in children:
            child_id = _store_image(session, repository.id, child)
            tags.create_temp_tag(session, repository.id, child_id, upstream.expiration_s or None)
        manifest_id = _store_image(session, repository.id, parsed)
        if by_digest:
            tags.create_temp_tag(session, repository.id, manifest_id, upstream.expiration_s or None)
        else:
            tags.set_tag(session, repository.id, reference, manifest_id, end_ms=_end_ms(upstream))
        session.commit()
        ref = repositories.find_repository_ref(session, path.namespace, path.name)
        assert ref is not None
        return ref


def _renew(reg: Registry, repository_id: int, name: str, manifest_id: int, upstream: Upstream):
    with reg.session_factory() as session:
        tags.set_tag(session, repository_id, name, manifest_id, end_ms=_end_ms(upstream))
        session.commit()


def pull_manifest(
    reg: Registry,
    path: RepoPath,
    identity: Identity,
    reference: str,
    upstream: Upstream,
) -> CachedManifest:
    """The manifest for a pull that missed the cache (blocking; run on the registry's pool)."""
    check_caller(reg, path, identity)
    by_digest = ":" in reference
    with reg.session_factory() as session:
        ref = repositories.find_repository_ref(session, path.namespace, path.name)
        cached = None
        if ref is not None and not by_digest:
            cached = _latest_cached(session, ref.id, reference)
            if cached is not None:
                session.expunge(cached)
    with UpstreamClient(reg.settings, upstream, path.name) as client:
        try:
            if (
                cached is not None
                and ref is not None
                and client.manifest_digest(reference) == cached.digest
            ):
                _renew(reg, ref.id, reference, cached.id, upstream)
                return CachedManifest(ref, cached.digest, cached.media_type, cached.manifest_bytes)
            parsed, children = _fetch(client, reference, reference if by_digest else None)
        except UpstreamUnavailable as exc:
            if cached is not None and ref is not None:
                return CachedManifest(ref, cached.digest, cached.media_type, cached.manifest_bytes)
            raise RegistryError("MANIFEST_UNKNOWN", str(exc), {"reference": reference}) from exc
        except UpstreamError as exc:
            raise RegistryError("MANIFEST_UNKNOWN", str(exc), {"reference": reference}) from exc
    ref = _store(reg, path, reference, by_digest, upstream, parsed, children)
    return CachedManifest(ref, parsed.digest, parsed.media_type, parsed.raw)


# --- blobs -------------------------------------------------------------------------------


def _claim(session: Session, digest: str) -> bool:
    """Take the fetch of `digest`, or take over a claim whose fetch stopped refreshing it."""
    try:
        with session.begin_nested():
            session.add(ProxyBlobFetch(digest=digest, claimed_at=utcnow()))
            session.flush()
        session.commit()
        return True
    except IntegrityError:
        session.rollback()
    taken = session.execute(
        update(ProxyBlobFetch)
        .where(ProxyBlobFetch.digest == digest, ProxyBlobFetch.claimed_at < utcnow() - CLAIM_STALE)
        .values(claimed_at=utcnow())
    ).rowcount
    session.commit()
    return bool(taken)


def _release(reg: Registry, digest: str) -> None:
    with reg.session_factory() as session:
        session.execute(delete(ProxyBlobFetch).where(ProxyBlobFetch.digest == digest))
        session.commit()


def _refresh(reg: Registry, digest: str) -> None:
    with reg.session_factory() as session:
        session.execute(
            update(ProxyBlobFetch)
            .where(ProxyBlobFetch.digest == digest)
            .values(claimed_at=utcnow())
        )
        session.commit()


def link(reg: Registry, repository_id: int, digest: str, size: int | None = None) -> None:
    """Let the repository serve a blob that is in storage."""
    if size is None:
        size = reg.store.blob_size(digest)
        assert size is not None
    with reg.session_factory() as session:
        blob = blobs.ensure_blob(session, digest, size)
        blobs.link_blob(session, repository_id, blob, expires_at=None)
        session.commit()


def _claimed(reg: Registry, digest: str) -> bool:
    """Whether a live fetch of `digest` holds its claim."""
    with reg.session_factory() as session:
        claimed_at = session.scalar(
            select(ProxyBlobFetch.claimed_at).where(ProxyBlobFetch.digest == digest)
        )
    return claimed_at is not None and claimed_at >= utcnow() - CLAIM_STALE


# Pulls of one digest in this process wait on the first one's event instead of asking the
# database: polling from the registry's threads would grow memory in each thread's arena.
# The /v2 app runs on one event loop per process.
_IN_FLIGHT: dict[str, asyncio.Event] = {}


def finish(digest: str) -> None:
    """Wake this process's pulls waiting for `digest` (the fetch ended, either way)."""
    event = _IN_FLIGHT.pop(digest, None)
    if event is not None:
        event.set()


async def obtain_blob(reg: Registry, digest: str) -> bool:
    """Wait until `digest` is in storage (True) or this request holds its fetch (False).

    After False the caller fetches and calls `finish(digest)` when done.
    """
    while True:
        event = _IN_FLIGHT.get(digest)
        if event is not None:
            await event.wait()
            continue
        _IN_FLIGHT[digest] = asyncio.Event()
        try:
            stored = await _stored_or_claimed(reg, digest)
        except BaseException:
            finish(digest)
            raise
        if stored:
            finish(digest)
        return stored


async def _stored_or_claimed(reg: Registry, digest: str) -> bool:
    """True once the blob is in storage; False when this process claimed its fetch."""
    while True:
        if await reg.run(reg.store.blob_size, digest) is not None:
            return True

        def claim() -> bool:
            with reg.session_factory() as session:
                return _claim(session, digest)

        if await reg.run(claim):
            # Stored between the size check and the claim: nothing to fetch.
            if await reg.run(reg.store.blob_size, digest) is not None:
                await reg.run(_release, reg, digest)
                return True
            return False
        # Another process fetches: watch its claim (one indexed row) until it ends.
        while await reg.run(_claimed, reg, digest):
            await asyncio.sleep(WAIT_STEP_S)


class BlobFetch:
    """One upstream blob, streamed to a client and into storage; stored only once verified.

    `close()` ends the upstream request and gives up the claim; it runs however the
    stream ends (finished, failed or never started because the client went away).
    """

    def __init__(
        self, reg: Registry, upstream: Upstream, path: RepoPath, repository_id: int, digest: str
    ) -> None:
        self.reg = reg
        self.digest = digest
        self.repository_id = repository_id
        self.client = UpstreamClient(reg.settings, upstream, path.name)
        self.upload_id = str(uuid.uuid4())
        self.size = 0
        self._response: ExitStack | None = None
        self._body = None
        self._closed = False

    def open(self, expected_size: int | None) -> int:
        """Start the upstream request; returns the blob's size."""
        stack = ExitStack()
        self._response = stack
        response = stack.enter_context(self.client.blob(self.digest))
        self._body = response
        length = response.headers.get("content-length")
        size = int(length) if length and length.isdigit() else expected_size
        if size is None or (expected_size is not None and size != expected_size):
            raise UpstreamError("the upstream's blob size does not match its manifest")
        self.size = size
        return size

    def chunks(self) -> Iterator[bytes]:
        """The blob's bytes as they arrive; the last step stores it when it verifies."""
        assert self._body is not None
        store = self.reg.store
        state = store.begin_upload(self.upload_id)
        writer = store.open_upload(self.upload_id, state)
        writing = True
        algorithm = self.digest.split(":", 1)[0]
        hasher = hashlib.new(algorithm)
        received = 0
        refreshed = utcnow()
        stored = False
        held = b""
        next_trim = TRIM_EVERY
        try:
            for piece in self._body.iter_raw(CHUNK):
                received += len(piece)
                if received > self.size:
                    raise UpstreamError("the upstream sent more bytes than announced")
                hasher.update(piece)
                writer.write(piece)
                if _MALLOC_TRIM is not None and received >= next_trim:
                    _MALLOC_TRIM(0)
                    next_trim = received + TRIM_EVERY
                if utcnow() - refreshed > CLAIM_REFRESH:
                    _refresh(self.reg, self.digest)
                    refreshed = utcnow()
                # One piece is held back until the digest verifies, so that a client never
                # receives a complete blob with the wrong bytes.
                if held:
                    yield held
                held = piece
            state = writer.close()
            writing = False
            actual = f"{algorithm}:{hasher.hexdigest()}"
            if received != self.size or actual != self.digest:
                raise UpstreamError(f"blob digest mismatch: expected {self.digest}, got {actual}")
            store.commit_upload(self.upload_id, state, self.digest)
            stored = True
            link(self.reg, self.repository_id, self.digest, received)
            if held:
                yield held
        finally:
            if writing:
                writer.abort()
            if not stored:
                store.cancel_upload(self.upload_id, state)
            self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._response is not None:
            self._response.close()
        self.client.close()
        _release(self.reg, self.digest)
