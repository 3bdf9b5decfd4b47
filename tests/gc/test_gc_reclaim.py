"""Garbage collection of tag history outside the time machine, manifests, blobs and deleted
repositories, observed through the API and storage."""

from __future__ import annotations

from sqlalchemy import select, update

from cargohold.db.base import make_engine, make_session_factory, utcnow
from cargohold.db.models.accounts import User
from cargohold.db.models.registry import Blob, Repository
from cargohold.domain import gc
from cargohold.storage import make_store
from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.content import add_stored_manifest, make_repository, sha256, tag_manifest
from tests.support.server import LiveServer


def run_gc(server: LiveServer) -> gc.GcReport:
    settings = server.settings
    engine = make_engine(settings.DB_URI, settings.DB_CONNECTION_ARGS)
    try:
        return gc.run_pass(
            make_session_factory(engine), make_store(settings), settings, now=utcnow()
        )
    finally:
        engine.dispose()


def set_window(server: LiveServer, username: str, seconds: int) -> None:
    with server.db() as session:
        session.execute(
            update(User).where(User.username == username).values(tag_expiration_s=seconds)
        )


def blob_rows(server: LiveServer, digests: list[str]) -> set[str]:
    with server.db() as session:
        return set(session.scalars(select(Blob.digest).where(Blob.digest.in_(digests))))


def test_history_outside_the_window_is_reclaimed(server: LiveServer) -> None:
    owner = create_user(server)
    path = make_repository(server, owner.username)
    only_old, shared, only_new = b"old layer", b"shared layer " + owner.username.encode(), b"new"
    old = add_stored_manifest(server, path, [only_old, shared])
    new = add_stored_manifest(server, path, [only_new, shared])
    tag_manifest(server, path, "v", old)
    tag_manifest(server, path, "v", new)
    store = make_store(server.settings)
    digests = [sha256(only_old), sha256(shared), sha256(only_new)]
    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as client:
        tags_url = f"/api/v1/repository/{path}/tag/?specificTag=v"
        run_gc(server)
        # Inside the window (two weeks by default) the moved row stays restorable.
        assert len(client.get(tags_url).json()["tags"]) == 2
        assert blob_rows(server, digests) == set(digests)

        set_window(server, owner.username, 0)
        collected = run_gc(server)
        assert collected.tags >= 1 and len(collected.manifests) >= 1
        rows = client.get(tags_url).json()["tags"]
        assert [row["manifest_digest"] for row in rows] == [new]
        restore = client.post(
            f"/api/v1/repository/{path}/tag/v/restore", json={"manifest_digest": old}
        )
        assert restore.status_code == 404
        assert blob_rows(server, digests) == {sha256(shared), sha256(only_new)}
        assert store.blob_size(sha256(only_old)) is None
        assert store.blob_size(sha256(shared)) == len(shared)
        manifest = client.get(f"/api/v1/repository/{path}/manifest/{new}")
        assert manifest.status_code == 200

        # Deleting the tag lets the rest go too, once outside the (zero) window.
        assert client.delete(f"/api/v1/repository/{path}/tag/v").status_code == 204
        run_gc(server)
        assert client.get(tags_url).json()["tags"] == []
        assert blob_rows(server, digests) == set()
        assert store.blob_size(sha256(shared)) is None


def test_deleted_repository_is_purged(server: LiveServer) -> None:
    owner = create_user(server)
    path = make_repository(server, owner.username)
    keep = make_repository(server, owner.username)
    data = b"purge me " + owner.username.encode()
    common = b"common " + owner.username.encode()
    tag_manifest(server, path, "v", add_stored_manifest(server, path, [data, common]))
    tag_manifest(server, keep, "v", add_stored_manifest(server, keep, [common]))
    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as client:
        assert client.delete(f"/api/v1/repository/{path}").status_code == 204
    collected = run_gc(server)
    assert collected.repositories >= 1
    with server.db() as session:
        names = set(
            session.scalars(
                select(Repository.name)
                .join(User, User.id == Repository.namespace_user_id)
                .where(User.username == owner.username)
            )
        )
    assert names == {keep.split("/")[1]}
    assert blob_rows(server, [sha256(data), sha256(common)]) == {sha256(common)}
    assert make_store(server.settings).blob_size(sha256(data)) is None
