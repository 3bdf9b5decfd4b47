"""Pull-through for proxy-cache organizations, as /v2 requests see it: the caller's right to
pull through, and one upstream fetch per blob digest at a time (the rules and the writes are
in domain/proxy_pull.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from cargohold.db.session import DbSession
from cargohold.domain import proxy_pull, repositories
from cargohold.domain.proxy_cache import Upstream
from cargohold.domain.repositories import RepositoryRef
from cargohold.registry.context import Registry, RepoPath
from cargohold.registry.tokens import Identity

WAIT_STEP_S = 0.5


@dataclass(frozen=True)
class CachedManifest:
    repo: RepositoryRef
    digest: str
    media_type: str
    raw: bytes


def namespace_upstream(reg: Registry, session: DbSession, namespace: str) -> Upstream | None:
    return proxy_pull.namespace_upstream(session, reg.settings, namespace)


def check_caller(reg: Registry, path: RepoPath, identity: Identity) -> None:
    # Quay pulls through for the organization's members only; the token endpoint grants them
    # pull on repositories that do not exist yet.
    if identity.is_anonymous or not identity.may(path.full, "pull"):
        raise reg.unauthorized(path, "pull")


def pull_manifest(
    reg: Registry,
    path: RepoPath,
    identity: Identity,
    reference: str,
    upstream: Upstream,
) -> CachedManifest:
    """The manifest for a pull that missed the cache (blocking; run on the registry's pool)."""
    check_caller(reg, path, identity)
    with reg.session_factory() as session:
        ref = repositories.find_repository_ref(session, path.namespace, path.name)
        cached = None
        if ref is not None and ":" not in reference:
            cached = proxy_pull.latest_cached(session, ref.id, reference)
    answer = proxy_pull.ask_upstream(
        reg.settings, upstream, path.name, reference, cached.digest if cached else None
    )
    if answer.parsed is None:
        assert cached is not None and ref is not None
        if answer.renew:
            with reg.session_factory() as session:
                proxy_pull.renew_tag(session, ref.id, reference, cached.id, upstream)
                session.commit()
        return CachedManifest(ref, cached.digest, cached.media_type, cached.manifest_bytes)
    with reg.session_factory() as session:
        with reg.refusals_kept(session, undo_writes=True):
            proxy_pull.store_fetched(
                session, reg.settings, path.namespace, path.name, reference, upstream, answer
            )
        session.commit()
        ref = repositories.find_repository_ref(session, path.namespace, path.name)
    assert ref is not None
    parsed = answer.parsed
    return CachedManifest(ref, parsed.digest, parsed.media_type, parsed.raw)


# --- blobs -------------------------------------------------------------------------------


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

        if await reg.run(proxy_pull.claim_fetch, reg.session_factory, digest):
            # Stored between the size check and the claim: nothing to fetch.
            if await reg.run(reg.store.blob_size, digest) is not None:
                await reg.run(proxy_pull.release_fetch, reg.session_factory, digest)
                return True
            return False
        # Another process fetches: watch its claim (one indexed row) until it ends.
        while await reg.run(proxy_pull.fetch_claimed, reg.session_factory, digest):
            await asyncio.sleep(WAIT_STEP_S)
