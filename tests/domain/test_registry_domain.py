"""The registry's domain layer on the live server's database: tags, manifests, uploads, keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading

import jwt
import pytest
from sqlalchemy import select

from cargohold.db.models.accounts import User
from cargohold.db.models.keys import ServiceKey
from cargohold.db.models.registry import Blob, Repository, RepositoryBlob, Tag
from cargohold.domain import blobs, manifests, repositories, service_keys, tags, uploads
from cargohold.storage.local import LocalStorage
from tests.support.accounts import create_user, unique


@pytest.fixture
def store(tmp_path) -> LocalStorage:
    return LocalStorage(str(tmp_path / "storage"))


@pytest.fixture
def repo_id(server) -> int:
    owner = create_user(server)
    with server.db() as session:
        namespace = session.get(User, owner.id)
        repo = repositories.find_or_create_repository(
            session, namespace, unique("repo"), public=False, creator=None
        )
        return repo.id


def _upload(session, store, repo_id: int, data: bytes, pieces: int = 3):
    upload = uploads.start_upload(session, store, repo_id)
    step = max(1, len(data) // pieces)
    for start in range(0, len(data), step):
        appender = uploads.open_appender(session, store, repo_id, upload.uuid, start)
        appender.write(data[start : start + step])
        uploads.record_progress(session, appender, appender.finish())
        appender.release()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return uploads.complete_upload(session, store, repo_id, upload.uuid, digest)


def test_chunked_upload_survives_a_lost_hasher(server, store, repo_id):
    data = b"layer-bytes-" * 1000
    with server.db() as session:
        upload = uploads.start_upload(session, store, repo_id)
        appender = uploads.open_appender(session, store, repo_id, upload.uuid, 0)
        appender.write(data[:5000])
        uploads.record_progress(session, appender, appender.finish())
        appender.release()
        upload_uuid = upload.uuid
    # Another process would not have the running hash: drop ours.
    uploads._hashers.forget(upload_uuid)
    with server.db() as session:
        with pytest.raises(uploads.RangeMismatch):
            uploads.open_appender(session, store, repo_id, upload_uuid, 4000)
        appender = uploads.open_appender(session, store, repo_id, upload_uuid, 5000)
        appender.write(data[5000:])
        uploads.record_progress(session, appender, appender.finish())
        appender.release()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blob = uploads.complete_upload(session, store, repo_id, upload_uuid, digest)
        assert blob.size == len(data)
    assert b"".join(store.read_blob(digest)) == data
    with server.db() as session:
        assert blobs.repository_blob(session, repo_id, digest) is not None
        assert uploads.get_upload(session, repo_id, upload_uuid) is None


def test_digest_mismatch_cancels_the_session(server, store, repo_id):
    with server.db() as session:
        upload = uploads.start_upload(session, store, repo_id)
        appender = uploads.open_appender(session, store, repo_id, upload.uuid, None)
        appender.write(b"abc")
        uploads.record_progress(session, appender, appender.finish())
        appender.release()
        wrong = "sha256:" + "0" * 64
        with pytest.raises(uploads.DigestMismatch):
            uploads.complete_upload(session, store, repo_id, upload.uuid, wrong)
        upload_uuid = upload.uuid
    with server.db() as session:
        assert uploads.get_upload(session, repo_id, upload_uuid) is None
    assert store.blob_size(wrong) is None


def test_ensure_blob_finds_the_existing_row(server, repo_id):
    digest = "sha256:" + hashlib.sha256(unique("blob").encode()).hexdigest()
    with server.db() as session:
        created = blobs.ensure_blob(session, digest, 10)
    with server.db() as session:
        again = blobs.ensure_blob(session, digest, 99)
        assert (again.id, again.size) == (created.id, 10)
        assert session.query(Blob).filter_by(digest=digest).count() == 1


def _link_expiry(server, repo_id: int, blob_id: int, expires_at):
    with server.db() as session:
        blobs.link_blob(session, repo_id, blob_id, expires_at=expires_at)
    with server.db() as session:
        links = session.query(RepositoryBlob).filter_by(repository_id=repo_id, blob_id=blob_id)
        assert links.count() == 1
        return links.one().expires_at


def test_a_link_never_gets_a_shorter_life(server, repo_id):
    digest = "sha256:" + hashlib.sha256(unique("blob").encode()).hexdigest()
    with server.db() as session:
        blob_id = blobs.ensure_blob(session, digest, 1).id
    soon = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=1)
    later = soon + dt.timedelta(hours=1)
    assert _link_expiry(server, repo_id, blob_id, later) == later
    assert _link_expiry(server, repo_id, blob_id, soon) == later
    assert _link_expiry(
        server, repo_id, blob_id, later + dt.timedelta(days=1)
    ) == later + dt.timedelta(days=1)
    assert _link_expiry(server, repo_id, blob_id, None) is None
    assert _link_expiry(server, repo_id, blob_id, soon) is None


def _image(session, store, repo_id, payload: bytes):
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": payload.hex()}).encode()
    config_blob = _upload(session, store, repo_id, config, 1)
    layer_blob = _upload(session, store, repo_id, payload)
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": manifests.OCI_MANIFEST,
            "config": {
                "mediaType": manifests.OCI_IMAGE_CONFIG,
                "digest": config_blob.digest,
                "size": config_blob.size,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_blob.digest,
                    "size": layer_blob.size,
                }
            ],
        }
    ).encode()
    return manifests.parse_manifest(raw, manifests.OCI_MANIFEST)


def test_manifest_validation(server, store, repo_id):
    with pytest.raises(manifests.ManifestInvalid):
        manifests.parse_manifest(b"{not json", manifests.OCI_MANIFEST)
    with pytest.raises(manifests.ManifestUnsupported):
        manifests.parse_manifest(b'{"schemaVersion": 1, "name": "x"}', None)
    with server.db() as session:
        parsed = _image(session, store, repo_id, b"one")
        missing = json.loads(parsed.raw)
        missing["layers"][0]["digest"] = "sha256:" + "1" * 64
        bad = manifests.parse_manifest(json.dumps(missing).encode(), manifests.OCI_MANIFEST)
        with pytest.raises(manifests.ManifestBlobUnknown):
            manifests.store_manifest(session, repo_id, bad)
        stored = manifests.store_manifest(session, repo_id, parsed)
        assert manifests.store_manifest(session, repo_id, parsed).id == stored.id


def test_tag_history_moves_and_deletes(server, store, repo_id):
    with server.db() as session:
        first = manifests.store_manifest(session, repo_id, _image(session, store, repo_id, b"a"))
        second = manifests.store_manifest(session, repo_id, _image(session, store, repo_id, b"b"))
        tags.set_tag(session, repo_id, "latest", first.id, keep_same=True)
        tags.set_tag(session, repo_id, "latest", first.id, keep_same=True)  # no new row
        new, previous = tags.set_tag(session, repo_id, "latest", second.id, keep_same=True)
        assert previous is not None and previous.manifest_id == first.id
        assert previous.lifetime_end_ms == new.lifetime_start_ms
        now = tags.now_ms()
        repo = session.get(Repository, repo_id)
        namespace = repo.namespace_user.username

        def pulled():
            return tags.pull_by_tag(session, namespace, repo.name, "latest", tags.now_ms())[1]

        assert pulled().digest == second.digest
        assert manifests.get_reachable_manifest(session, repo_id, first.digest, now) is None
        assert tags.delete_tag(session, repo_id, "latest") is not None
        assert pulled() is None
        assert tags.has_history(session, repo_id, "latest")
        rows = session.query(Tag).filter_by(repository_id=repo_id, name="latest").all()
        assert len(rows) == 2 and all(r.lifetime_end_ms is not None for r in rows)
        tags.create_temp_tag(session, repo_id, first.id, 3600)
        assert manifests.get_reachable_manifest(session, repo_id, first.digest, tags.now_ms())
        assert tags.list_tag_names(session, repo_id, limit=10) == ([], False)


def test_concurrent_pushes_of_one_tag_leave_one_alive_row(server, store, repo_id):
    with server.db() as session:
        ids = [
            manifests.store_manifest(session, repo_id, _image(session, store, repo_id, p)).id
            for p in (b"x", b"y")
        ]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def push(manifest_id: int) -> None:
        try:
            barrier.wait()
            with server.db() as session:
                tags.set_tag(session, repo_id, "race", manifest_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with server.db() as session:
        alive = session.query(Tag).filter_by(repository_id=repo_id, name="race").all()
        assert len(alive) == 2
        assert sum(1 for row in alive if row.lifetime_end_ms is None) == 1


def test_a_push_that_loses_the_tag_race_moves_on_from_the_winner(server, store, repo_id):
    with server.db() as session:
        ids = [
            manifests.store_manifest(session, repo_id, _image(session, store, repo_id, p)).id
            for p in (b"w", b"l")
        ]
    results: list[tuple[Tag, Tag | None]] = []

    def lose() -> None:
        with server.db() as session:
            results.append(tags.set_tag(session, repo_id, "race", ids[1]))

    loser = threading.Thread(target=lose)
    with server.db() as session:
        tags.set_tag(session, repo_id, "race", ids[0])
        loser.start()
        # It waits: on PostgreSQL for the winner's uncommitted alive row, which it did not
        # see when it looked; on SQLite for the write lock.
        loser.join(timeout=1)
        assert loser.is_alive()
    loser.join(timeout=30)
    assert not loser.is_alive()
    ((new, previous),) = results
    assert previous is not None and previous.manifest_id == ids[0]
    with server.db() as session:
        rows = session.scalars(
            select(Tag)
            .where(Tag.repository_id == repo_id, Tag.name == "race")
            .order_by(Tag.lifetime_start_ms, Tag.id)
        ).all()
        history = [(row.manifest_id, row.lifetime_end_ms) for row in rows]
    assert history == [(ids[0], new.lifetime_start_ms), (ids[1], None)]


def test_instance_key_signs_and_verifies(server):
    settings = server.settings
    from cargohold.db.base import make_engine, make_session_factory

    engine = make_engine(settings.DB_URI)
    try:
        ring = service_keys.KeyRing(settings, make_session_factory(engine))
        signing = ring.signing_key()
        assert ring.signing_key() is signing
        token = jwt.encode({"sub": "x"}, signing.private_key, "RS256", {"kid": signing.kid})
        public = ring.public_key(signing.kid)
        assert public is not None
        assert jwt.decode(token, public.key, ["RS256"])["sub"] == "x"
        assert ring.public_key("unknown-kid") is None
        with server.db() as session:
            key = session.query(ServiceKey).filter_by(kid=signing.kid).one()
            assert key.service == "quay"
            assert key.approval.approval_type == service_keys.APPROVAL_AUTOMATIC
            assert "PRIVATE KEY" not in (key.private_key_encrypted or "")
            assert json.loads(key.metadata_json) == {"created_by": "CLI tool"}
    finally:
        engine.dispose()
