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

import ctypes
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from cargohold.config import Settings
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import User
from cargohold.db.models.proxy import ProxyBlobFetch, ProxyCacheConfig
from cargohold.db.models.registry import Manifest, Tag
from cargohold.db.session import DbSession, SessionFactory
from cargohold.domain import accounts, blobs, manifests, proxy_cache, quota, repositories, tags
from cargohold.domain.errors import NotFound
from cargohold.domain.proxy_cache import Upstream
from cargohold.domain.proxy_upstream import UpstreamClient, UpstreamError, UpstreamUnavailable
from cargohold.domain.repositories import RepositoryRef
from cargohold.storage.base import BlobStore

# Pieces of a fetch are allocated on its thread, and storage buffers whole parts: glibc keeps
# such freed memory in the thread's arena unless asked to give it back.
TRIM_EVERY = 8 * 1024 * 1024
_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)

# A fetch whose claim has not been refreshed for this long died; another pull takes it over.
CLAIM_STALE = dt.timedelta(seconds=60)
CLAIM_REFRESH = dt.timedelta(seconds=10)
CHUNK = 256 * 1024


class UpstreamManifestUnknown(NotFound):
    """The upstream could not give the manifest a pull asked for; `extra` names the reference."""


class UpstreamBlobUnknown(NotFound):
    """The upstream could not give the blob a pull asked for; `extra` names the digest."""


def namespace_upstream(session: DbSession, settings: Settings, namespace: str) -> Upstream | None:
    """The upstream of a proxy-cache organization, or None (not one, or the feature is off)."""
    if not settings.FEATURE_PROXY_CACHE:
        return None
    config = session.scalar(
        select(ProxyCacheConfig)
        .join(User, User.id == ProxyCacheConfig.organization_id)
        .where(User.username == namespace, User.organization.is_(True))
    )
    return proxy_cache.upstream_for(settings, config) if config is not None else None


# --- manifests ---------------------------------------------------------------------------


def latest_cached(session: DbSession, repository_id: int, name: str) -> Manifest | None:
    """The manifest the tag last pointed at, alive or expired (served while upstream is down).
    Detached from the session, so that it outlives it."""
    manifest = session.scalar(
        select(Manifest)
        .join(Tag, Tag.manifest_id == Manifest.id)
        .where(Tag.repository_id == repository_id, Tag.name == name, Tag.hidden.is_(False))
        .order_by(Tag.lifetime_start_ms.desc())
        .limit(1)
    )
    if manifest is not None:
        session.expunge(manifest)
    return manifest


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


@dataclass
class UpstreamAnswer:
    """What the upstream says about a reference. With no `parsed`, the cached manifest
    serves: it is still current (`renew` its tag) or the upstream is unavailable."""

    parsed: manifests.ParsedManifest | None = None
    children: list[manifests.ParsedManifest] = field(default_factory=list)
    renew: bool = False


def ask_upstream(
    settings: Settings,
    upstream: Upstream,
    repository: str,
    reference: str,
    cached_digest: str | None,
) -> UpstreamAnswer:
    """The upstream's manifest for `reference`, unless `cached_digest` still serves."""
    by_digest = ":" in reference
    with UpstreamClient(settings, upstream, repository) as client:
        try:
            if cached_digest is not None and client.manifest_digest(reference) == cached_digest:
                return UpstreamAnswer(renew=True)
            parsed, children = _fetch(client, reference, reference if by_digest else None)
        except UpstreamError as exc:
            if isinstance(exc, UpstreamUnavailable) and cached_digest is not None:
                return UpstreamAnswer()
            raise UpstreamManifestUnknown(str(exc), reference=reference) from exc
    return UpstreamAnswer(parsed, children)


def _store_image(
    session: DbSession,
    settings: Settings,
    owner: User,
    repository_id: int,
    parsed: manifests.ParsedManifest,
) -> int:
    """Store a manifest with placeholder rows for blobs this registry does not have yet, and
    count them in the namespace's usage."""
    for descriptor in parsed.blob_descriptors:
        blob = blobs.ensure_blob(session, descriptor.digest, descriptor.size)
        blobs.link_blob(session, repository_id, blob.id, expires_at=None)
    stored = manifests.store_manifest(session, repository_id, parsed)
    quota.record_manifest_push(
        session,
        settings,
        owner.id,
        repository_id,
        namespace_enabled=owner.enabled,
        manifest_id=stored.id,
        new_blob_ids=stored.new_blob_ids,
    )
    return stored.id


def store_fetched(
    session: DbSession,
    settings: Settings,
    namespace: str,
    name: str,
    reference: str,
    upstream: Upstream,
    answer: UpstreamAnswer,
) -> None:
    """Cache what the upstream gave, making room under the namespace's quota (QuotaExceeded
    when it cannot fit: the caller rolls back and records the refusal). The caller commits."""
    parsed = answer.parsed
    assert parsed is not None
    owner = accounts.get_namespace(session, namespace)
    if owner is None:
        raise NotFound("repository not found", name=f"{namespace}/{name}")
    repository = repositories.find_or_create_repository(
        session, owner, name, public=False, creator=None
    )
    if not parsed.is_index:
        size = sum(layer.size for layer in parsed.layers)
        proxy_cache.make_room(session, settings, owner.id, size)
    lifetime = upstream.expiration_s or None
    for child in answer.children:
        tags.create_temp_tag(
            session,
            repository.id,
            _store_image(session, settings, owner, repository.id, child),
            lifetime,
        )
    manifest_id = _store_image(session, settings, owner, repository.id, parsed)
    if ":" in reference:
        tags.create_temp_tag(session, repository.id, manifest_id, lifetime)
    else:
        tags.set_tag(session, repository.id, reference, manifest_id, end_ms=_end_ms(upstream))


def renew_tag(
    session: DbSession, repository_id: int, name: str, manifest_id: int, upstream: Upstream
) -> None:
    """The upstream still has the cached manifest: its tag lives on. The caller commits."""
    tags.set_tag(session, repository_id, name, manifest_id, end_ms=_end_ms(upstream))


# --- blobs -------------------------------------------------------------------------------


def claim_fetch(session_factory: SessionFactory, digest: str) -> bool:
    """Take the fetch of `digest`, or take over a claim whose fetch stopped refreshing it."""
    with session_factory() as session:
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
            .where(
                ProxyBlobFetch.digest == digest, ProxyBlobFetch.claimed_at < utcnow() - CLAIM_STALE
            )
            .values(claimed_at=utcnow())
        ).rowcount
        session.commit()
        return bool(taken)


def release_fetch(session_factory: SessionFactory, digest: str) -> None:
    with session_factory() as session:
        session.execute(delete(ProxyBlobFetch).where(ProxyBlobFetch.digest == digest))
        session.commit()


def _refresh_claim(session_factory: SessionFactory, digest: str) -> None:
    with session_factory() as session:
        session.execute(
            update(ProxyBlobFetch)
            .where(ProxyBlobFetch.digest == digest)
            .values(claimed_at=utcnow())
        )
        session.commit()


def fetch_claimed(session_factory: SessionFactory, digest: str) -> bool:
    """Whether a live fetch of `digest` holds its claim."""
    with session_factory() as session:
        claimed_at = session.scalar(
            select(ProxyBlobFetch.claimed_at).where(ProxyBlobFetch.digest == digest)
        )
    return claimed_at is not None and claimed_at >= utcnow() - CLAIM_STALE


def link(
    session_factory: SessionFactory,
    store: BlobStore,
    repository_id: int,
    digest: str,
    size: int | None = None,
) -> None:
    """Let the repository serve a blob that is in storage."""
    if size is None:
        size = store.blob_size(digest)
        assert size is not None
    with session_factory() as session:
        blob = blobs.ensure_blob(session, digest, size)
        blobs.link_blob(session, repository_id, blob.id, expires_at=None)
        session.commit()


class BlobFetch:
    """One upstream blob, streamed to a client and into storage; stored only once verified.

    `close()` ends the upstream request and gives up the claim; it runs however the
    stream ends (finished, failed or never started because the client went away).
    """

    def __init__(
        self,
        settings: Settings,
        session_factory: SessionFactory,
        store: BlobStore,
        upstream: Upstream,
        repository: RepositoryRef,
        name: str,
        digest: str,
    ) -> None:
        self.session_factory = session_factory
        self.store = store
        self.digest = digest
        self.repository_id = repository.id
        self.client = UpstreamClient(settings, upstream, name)
        self.upload_id = str(uuid.uuid4())
        self.size = 0
        self._response: ExitStack | None = None
        self._body = None
        self._closed = False

    def open(self, expected_size: int | None) -> int:
        """Start the upstream request; returns the blob's size."""
        try:
            stack = ExitStack()
            self._response = stack
            response = stack.enter_context(self.client.blob(self.digest))
            self._body = response
            length = response.headers.get("content-length")
            size = int(length) if length and length.isdigit() else expected_size
            if size is None or (expected_size is not None and size != expected_size):
                raise UpstreamError("the upstream's blob size does not match its manifest")
        except UpstreamError as exc:
            raise UpstreamBlobUnknown(str(exc), digest=self.digest) from exc
        self.size = size
        return size

    def chunks(self) -> Iterator[bytes]:
        """The blob's bytes as they arrive; the last step stores it when it verifies."""
        assert self._body is not None
        store = self.store
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
                    _refresh_claim(self.session_factory, self.digest)
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
            link(self.session_factory, store, self.repository_id, self.digest, received)
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
        release_fetch(self.session_factory, self.digest)
