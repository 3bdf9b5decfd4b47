"""Pushes adjust the stored usage totals instead of recomputing them: after every kind of
change (pushes sharing layers across tags and repositories, re-pushes, pushes by digest,
concurrent pushes, GC, repository deletion) each stored total equals a count from scratch."""

from __future__ import annotations

import json
import secrets
import threading

import httpx
from sqlalchemy import select, update

from cargohold.db.base import make_engine, make_session_factory, utcnow
from cargohold.db.models.accounts import User
from cargohold.db.models.quota import NamespaceSize, RepositorySize
from cargohold.db.models.registry import Repository
from cargohold.domain import gc
from cargohold.domain import quota as quotas
from cargohold.storage import make_store
from tests.support.accounts import ALL_SCOPES, bearer_client, create_organization, issue_token
from tests.support.registry import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Blob,
    Image,
    pull_push,
    push_blob,
    push_image,
    token_for,
    v2_client,
)
from tests.support.server import LiveServer


def _blob(media_type: str = OCI_LAYER) -> Blob:
    return Blob(secrets.token_bytes(1000 + secrets.randbelow(1000)), media_type)


def _image(*layers: Blob) -> Image:
    config = _blob(OCI_CONFIG)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [layer.descriptor() for layer in layers],
        }
    ).encode()
    return Image(config, list(layers), manifest, OCI_MANIFEST)


class Namespace:
    def __init__(self, server: LiveServer, owner) -> None:
        self.server = server
        self.owner = owner
        self.name = create_organization(server, owner)
        self.repos = [f"{self.name}/{name}" for name in ("first", "second")]
        auth = (owner.username, owner.password)
        self.client = v2_client(server, token_for(server, auth, *map(pull_push, self.repos)))
        with server.db() as session:
            self.id = session.scalar(select(User.id).where(User.username == self.name))

    def push(self, repo: int, image: Image, reference: str) -> None:
        assert push_image(self.client, self.repos[repo], image, reference).status_code == 201

    def assert_totals_exact(self, *images: Image) -> None:
        """Stored totals equal counts from scratch; `images` are what the namespace holds."""
        with self.server.db() as session:
            stored = session.scalar(
                select(NamespaceSize.size_bytes).where(NamespaceSize.namespace_id == self.id)
            )
            assert stored == quotas.compute_namespace_size(session, self.id)
            if images:
                distinct = {blob.digest: blob for image in images for blob in image.blobs}
                assert stored == sum(len(blob.data) for blob in distinct.values())
            repositories = session.execute(
                select(Repository.id, RepositorySize.size_bytes)
                .join(RepositorySize, RepositorySize.repository_id == Repository.id)
                .where(Repository.namespace_user_id == self.id, Repository.deleted.is_(False))
            ).all()
            for repository_id, size in repositories:
                assert size == quotas.compute_repository_size(session, repository_id)


def test_pushes_keep_stored_totals_exact_through_sharing_gc_and_deletion(
    server: LiveServer, user
) -> None:
    ns = Namespace(server, user)
    shared, first_only, second_only = _blob(), _blob(), _blob()
    one = _image(shared, first_only)
    two = _image(shared, _blob())
    in_second = _image(shared, first_only, second_only)

    ns.push(0, one, "v1")
    ns.assert_totals_exact(one)
    # Re-pushing an image, or pushing it under another tag, adds nothing.
    ns.push(0, one, "v1")
    ns.push(0, one, "also")
    ns.assert_totals_exact(one)
    ns.push(0, two, "v2")
    ns.assert_totals_exact(one, two)
    # Layers the first repository holds count once in the namespace, fully in the second.
    ns.push(1, in_second, "v1")
    ns.assert_totals_exact(one, two, in_second)
    by_digest = _image(_blob())
    ns.push(1, by_digest, by_digest.digest)
    ns.assert_totals_exact(one, two, in_second, by_digest)

    # GC removes the manifests no tag keeps: the totals drop, still exact.
    with server.db() as session:
        session.execute(update(User).where(User.id == ns.id).values(tag_expiration_s=0))
    for tag in ("v2", "also"):
        assert ns.client.delete(f"/v2/{ns.repos[0]}/manifests/{tag}").status_code == 202
    settings = server.settings
    engine = make_engine(settings.DB_URI, settings.DB_CONNECTION_ARGS)
    try:
        gc.run_pass(
            make_session_factory(engine),
            make_store(settings),
            settings,
            now=utcnow(),
            namespace_id=ns.id,
        )
    finally:
        engine.dispose()
    # (Whether the manifest pushed by digest is still kept depends on the clock.)
    ns.assert_totals_exact()

    # A deleted repository stops counting; a blob only it held counts again once pushed.
    token = issue_token(server, user.username, ALL_SCOPES)
    with bearer_client(server, token) as api:
        assert api.delete(f"/api/v1/repository/{ns.repos[1]}").status_code == 204
    ns.assert_totals_exact(one)
    again = _image(second_only, first_only)
    ns.push(0, again, "v3")
    ns.assert_totals_exact(one, again)
    ns.client.close()


def _put_together(ns: Namespace, images: list[tuple[int, Image]], prefix: str) -> list[int]:
    """PUT each manifest (blobs already pushed) from its own thread, all at once."""
    barrier = threading.Barrier(len(images))
    results: list[int] = []

    def put(repo: int, image: Image, tag: str) -> None:
        with httpx.Client(base_url=ns.server.url, headers=ns.client.headers, timeout=60) as client:
            barrier.wait()
            response = client.put(
                f"/v2/{ns.repos[repo]}/manifests/{tag}",
                content=image.manifest,
                headers={"Content-Type": image.media_type},
            )
            results.append(response.status_code)

    threads = [
        threading.Thread(target=put, args=(repo, image, f"{prefix}-{n}"))
        for n, (repo, image) in enumerate(images)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_concurrent_pushes_of_a_new_layer_count_it_once(server: LiveServer, user) -> None:
    ns = Namespace(server, user)
    warmup = _image(_blob())
    ns.push(0, warmup, "warmup")
    ns.push(1, warmup, "warmup")
    held = [warmup]
    for round_number in range(6):
        layer = _blob()
        # The same new layer reaches each repository in its own image (and twice in one).
        images = [(0, _image(layer)), (1, _image(layer)), (1, _image(layer))]
        for repo, image in images:
            for blob in image.blobs:
                push_blob(ns.client, ns.repos[repo], blob.data)
        results = _put_together(ns, images, f"r{round_number}")
        assert results == [201] * len(images)
        held.extend(image for _, image in images)
        ns.assert_totals_exact(*held)
    ns.client.close()
