"""Manifests, tag listing, referrers and the catalog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from cargohold.db.session import DbSession
from cargohold.domain import blobs, manifest_info, manifest_pushes, manifests, tags
from cargohold.domain.catalog import catalog_page
from cargohold.domain.repositories import RepositoryRef
from cargohold.paging import encode_page_token, start_id
from cargohold.registry import proxy
from cargohold.registry.context import Registry, RepoPath
from cargohold.registry.errors import RegistryError
from cargohold.registry.http import Request, send, send_json
from cargohold.registry.tokens import Identity

PAGE_SIZE = 100
# Quay stops at 100 per page; clients asking for more get it (the OCI contract lets them),
# and a tag listing without `n` is complete in one response, as distribution's is.
MAX_PAGE_SIZE = 10_000


def _is_digest_reference(reference: str) -> bool:
    return ":" in reference


def _check_digest(digest: str) -> None:
    if not blobs.is_valid_digest(digest):
        raise RegistryError("DIGEST_INVALID", "invalid digest", {"digest": digest})


def _page_size(request: Request, default: int | None = PAGE_SIZE) -> int | None:
    raw = request.arg("n")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise RegistryError("INVALID_REQUEST", "n must be a number") from exc
    if value < 0:
        raise RegistryError("INVALID_REQUEST", "n must not be negative")
    return min(value, MAX_PAGE_SIZE)


def _find_manifest(reg: Registry, path: RepoPath, identity: Identity, find, unknown):
    """The repository and the manifest `find` reads for a pull, in one session; or the
    namespace's upstream when a proxy cache does not hold the manifest yet. `unknown` names the
    error for a manifest that is in neither place."""
    with reg.session_factory() as session:
        found, manifest = find(session)
        if manifest is None:
            upstream = proxy.namespace_upstream(reg, session, path.namespace)
            if upstream is not None:
                return None, upstream
        repo = reg.check_repository(found, path, identity, "pull")
        if manifest is None:
            raise unknown(session, repo)
        return (repo, manifest.digest, manifest.media_type, manifest.manifest_bytes), None


def _unknown_tag(session: DbSession, repo: RepositoryRef, ref: str) -> RegistryError:
    if tags.has_history(session, repo.id, ref):
        return RegistryError(
            "TAG_EXPIRED",
            f"Tag {ref} was deleted or has expired. To pull, revive via time machine",
        )
    return RegistryError("MANIFEST_UNKNOWN", detail={"tag": ref})


async def get_manifest(reg: Registry, request: Request, send_fn, path: RepoPath, ref: str) -> None:
    head = request.method == "HEAD"
    identity = await reg.access(request, path, "pull")
    now = tags.now_ms()
    if _is_digest_reference(ref):
        _check_digest(ref)
        local, upstream = await reg.run(
            _find_manifest,
            reg,
            path,
            identity,
            lambda session: manifests.pull_by_digest(session, path.namespace, path.name, ref, now),
            lambda session, repo: RegistryError("MANIFEST_UNKNOWN", detail={"digest": ref}),
        )
        log_key = {"manifest_digest": ref}
    else:
        if not tags.is_valid_tag_name(ref):
            raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": ref})
        local, upstream = await reg.run(
            _find_manifest,
            reg,
            path,
            identity,
            lambda session: tags.pull_by_tag(session, path.namespace, path.name, ref, now),
            lambda session, repo: _unknown_tag(session, repo, ref),
        )
        log_key = {"tag": ref}
    if upstream is not None:
        cached = await reg.run(proxy.pull_manifest, reg, path, identity, ref, upstream)
        repo, digest, media_type, raw = cached.repo, cached.digest, cached.media_type, cached.raw
    else:
        repo, digest, media_type, raw = local
    log_key["manifest_digest"] = digest
    if not head:
        reg.record_pull(repo, path, identity, request, {**log_key, "mediaType": media_type})
    await send(
        send_fn,
        200,
        raw,
        {"Docker-Content-Digest": digest, "ETag": f'"{digest}"'},
        content_type=media_type,
        head=head,
    )


async def put_manifest(reg: Registry, request: Request, send_fn, path: RepoPath, ref: str) -> None:
    identity = await reg.access(request, path, "push")
    by_digest = _is_digest_reference(ref)
    if by_digest:
        _check_digest(ref)
    elif not tags.is_valid_tag_name(ref):
        raise RegistryError("TAG_INVALID", "invalid tag name", {"tag": ref})
    body = await request.read_body(manifests.MAX_MANIFEST_BYTES)
    if body is None:
        raise RegistryError("SIZE_INVALID", "manifest is too large", status=413)
    content_type = request.header(b"content-type")

    def store():
        digest = manifests.digest_of(body, ref.split(":", 1)[0]) if by_digest else None
        parsed = manifests.parse_manifest(body, content_type, digest=digest)
        if by_digest and parsed.digest != ref:
            raise RegistryError("DIGEST_INVALID", detail={"digest": ref})
        labels = manifest_info.content_labels(reg.store, parsed)
        with reg.session_factory() as session:
            repo = reg.repository(session, path, identity, "push")
            # The manifest and its tag go with a refused push; only the admins' notice stays.
            with reg.refusals_kept(session, undo_writes=True), _immutable_tag_refused():
                manifest_pushes.push_manifest(
                    session,
                    reg.settings,
                    repo,
                    path.namespace,
                    path.name,
                    None if by_digest else ref,
                    parsed,
                    labels,
                    reg.actor(identity, request),
                )
            session.commit()
        return parsed

    parsed = await reg.run(store)
    headers = {
        "Location": f"/v2/{path.full}/manifests/{parsed.digest}",
        "Docker-Content-Digest": parsed.digest,
    }
    if parsed.subject is not None:
        headers["OCI-Subject"] = parsed.subject.digest
    await send(send_fn, 201, b"", headers)


@contextmanager
def _immutable_tag_refused() -> Iterator[None]:
    """TAG_IMMUTABLE for a write to an immutable tag (tags.TagImmutable has no kind yet)."""
    try:
        yield
    except tags.TagImmutable as exc:
        raise RegistryError(
            "TAG_IMMUTABLE", detail={"message": f"tag {exc.name} is immutable"}
        ) from exc


async def delete_manifest(
    reg: Registry, request: Request, send_fn, path: RepoPath, ref: str
) -> None:
    identity = await reg.access(request, path, "push")
    by_digest = _is_digest_reference(ref)
    if by_digest:
        _check_digest(ref)

    def remove():
        with reg.session_factory() as session:
            repo = reg.repository(session, path, identity, "push")
            with _immutable_tag_refused():
                manifest_pushes.delete_manifest(
                    session, repo, path.namespace, path.name, ref, reg.actor(identity, request)
                )
            session.commit()

    await reg.run(remove)
    await send(send_fn, 202)


async def list_tags(reg: Registry, request: Request, send_fn, path: RepoPath) -> None:
    identity = await reg.access(request, path, "pull")
    limit = _page_size(request, default=None)
    last = request.arg("last") or None

    if limit is None and last is None:
        await _send_all_tags(reg, send_fn, path, identity)
        return

    def fetch():
        with reg.session_factory() as session:
            repo = reg.repository(session, path, identity, "pull")
            if limit == 0:
                return [], False
            return tags.list_tag_names(session, repo.id, limit=limit, after=last)

    names, more = await reg.run(fetch)
    headers = {}
    if more:
        headers["Link"] = (
            f'</v2/{path.full}/tags/list?n={limit}&last={quote(names[-1])}>; rel="next"'
        )
    await send_json(send_fn, 200, {"name": path.full, "tags": names}, headers)


async def _send_all_tags(reg: Registry, send_fn, path: RepoPath, identity: Identity) -> None:
    """The whole list in one page, its array built by the database."""

    def fetch() -> str:
        with reg.session_factory() as session:
            repo = reg.repository(session, path, identity, "pull")
            return tags.tag_names_json(session, repo.id)

    names = await reg.run(fetch)
    body = f'{{"name":{json.dumps(path.full)},"tags":{names}}}'.encode()
    await send(send_fn, 200, body, content_type="application/json")


async def list_referrers(
    reg: Registry, request: Request, send_fn, path: RepoPath, digest: str
) -> None:
    identity = await reg.access(request, path, "pull")
    _check_digest(digest)
    artifact_type = request.arg("artifactType") or None

    def fetch():
        with reg.session_factory() as session:
            repo = reg.repository(session, path, identity, "pull")
            return manifests.list_referrers(session, repo.id, digest, tags.now_ms(), artifact_type)

    found = await reg.run(fetch)
    index = {
        "schemaVersion": 2,
        "mediaType": manifests.OCI_INDEX,
        "manifests": [referrer.descriptor() for referrer in found],
    }
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    await send(send_fn, 200, json.dumps(index).encode(), headers, content_type=manifests.OCI_INDEX)


async def catalog(reg: Registry, request: Request, send_fn) -> None:
    identity = await reg.identity(request)
    limit = _page_size(request) or PAGE_SIZE
    limit = min(limit, PAGE_SIZE)
    token = request.arg("next_page") or request.arg("last")
    settings = reg.settings
    if identity.is_anonymous and not settings.FEATURE_PUBLIC_CATALOG:
        await send_json(send_fn, 200, {"repositories": []})
        return

    def fetch() -> tuple[list[str], int | None]:
        with reg.session_factory() as session:
            return catalog_page(
                session, settings, identity.username, start_id(settings, token), limit
            )

    names, next_id = await reg.run(fetch)
    headers = {}
    if next_id is not None:
        next_token = quote(encode_page_token(settings, {"start_id": next_id}))
        headers["Link"] = f'</v2/_catalog?n={limit}&next_page={next_token}>; rel="next"'
    await send_json(send_fn, 200, {"repositories": names}, headers)
