"""Garbage collection: what goes, what stays, and when, on the server's real storage."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
import sys
import time
import uuid

import pytest
from sqlalchemy import select

from cargohold.db.models.quota import NamespaceSize
from cargohold.db.models.registry import BlobUpload, Repository, Tag
from cargohold.domain import quota, repositories, tags, uploads
from cargohold.storage.base import StorageError
from tests.gc.conftest import Registry, sha256
from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.server import REPO_ROOT

LATER = dt.timedelta(minutes=5)


def layer(label: str, size: int = 2000) -> bytes:
    return label.encode() + secrets.token_bytes(size)


def test_shared_layers_stay_and_unshared_ones_vanish(registry: Registry) -> None:
    registry.set_window(60)
    shared, only_a, only_b = layer("shared"), layer("a"), layer("b")
    image_a = registry.push_image("one", "a", [shared, only_a])
    image_b = registry.push_image("two", "b", [shared, only_b])
    kept_by_b = set(image_b.blobs)
    registry.delete_tag("one", "a")

    inside = registry.gc(after=dt.timedelta(seconds=30))
    assert inside.manifests == []
    assert all(registry.stored(digest) for digest in image_a.blobs)

    report = registry.gc(after=LATER)
    assert report.manifests == [image_a.digest]
    gone = set(image_a.blobs) - kept_by_b
    assert set(report.blobs) == gone
    assert sha256(only_a) in gone and sha256(shared) not in gone and len(gone) == 2
    for digest in gone:
        assert not registry.stored(digest)
        assert not registry.blob_row(digest)
    registry.pull(image_b)
    assert registry.links("one") == set()


def test_restore_works_until_the_window_passes(registry: Registry, server) -> None:
    registry.set_window(3600)
    image = registry.push_image("restore", "latest", [layer("r")])
    registry.delete_tag("restore", "latest")
    registry.gc(after=dt.timedelta(minutes=30))
    token = issue_token(server, registry.owner.username, ALL_SCOPES)
    path = f"/api/v1/repository/{registry.owner.username}/restore/tag/latest/restore"
    with bearer_client(server, token) as client:
        response = client.post(path, json={"manifest_digest": image.digest})
        assert response.status_code == 200, response.text
        registry.pull(image)
        registry.delete_tag("restore", "latest")
        report = registry.gc(after=dt.timedelta(hours=2))
        assert report.manifests == [image.digest]
        response = client.post(path, json={"manifest_digest": image.digest})
        assert response.status_code == 404
    assert not any(registry.stored(digest) for digest in image.blobs)


def test_uploaded_blobs_live_through_their_grace_period(registry: Registry) -> None:
    digest = registry.push_blob("uploads", layer("pending"))
    assert registry.gc(after=dt.timedelta(hours=1)).blobs == []
    assert registry.stored(digest)
    report = registry.gc(after=dt.timedelta(days=2))
    assert report.blobs == [digest]
    assert not registry.stored(digest) and not registry.blob_row(digest)


def test_index_children_live_while_the_index_does(registry: Registry) -> None:
    registry.set_window(0)
    children = []
    for arch in ("amd64", "arm64"):
        image = registry.push_image("multi", None, [layer(arch)])
        children.append(image)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": child.digest,
                "size": 10,
                "platform": {"architecture": "amd64", "os": "linux"},
            }
            for child in children
        ],
    }
    index_image = registry.put_manifest("multi", "latest", json.dumps(index).encode(), {})
    # The children's own hidden tags go; the index keeps them.
    with registry.sessions() as session:
        repo = registry.repository(session, "multi")
        for row in session.scalars(
            select(Tag).where(Tag.repository_id == repo.id, Tag.hidden.is_(True))
        ):
            row.lifetime_end_ms = tags.now_ms() - 1
        session.commit()
    report = registry.gc(after=LATER)
    assert report.manifests == []
    for child in children:
        registry.pull(child)
    registry.delete_tag("multi", "latest")
    report = registry.gc(after=LATER)
    assert set(report.manifests) == {index_image.digest, *(child.digest for child in children)}
    for child in children:
        assert not any(registry.stored(digest) for digest in child.blobs)


def test_referrers_go_with_their_subject(registry: Registry) -> None:
    registry.set_window(0)
    subject = registry.push_image("art", "v1", [layer("subject")])
    signature = layer("signature", 100)
    config = b"{}"
    registry.push_blob("art", signature)
    registry.push_blob("art", config)
    raw = registry.manifest_bytes(config, [signature], subject=subject.digest)
    referrer = registry.put_manifest(
        "art", None, raw, {sha256(config): config, sha256(signature): signature}
    )
    assert registry.gc(after=dt.timedelta(days=2)).manifests == []
    registry.pull(referrer)
    registry.delete_tag("art", "v1")
    first = registry.gc(after=dt.timedelta(days=2))
    second = registry.gc(after=dt.timedelta(days=2))
    assert first.manifests + second.manifests == [subject.digest, referrer.digest]
    assert not registry.stored(sha256(signature))


def test_dry_run_lists_exactly_what_a_pass_removes(registry: Registry) -> None:
    registry.set_window(0)
    image = registry.push_image("dry", "gone", [layer("dry")])
    registry.delete_tag("dry", "gone")
    dry = registry.gc(after=LATER, dry_run=True)
    assert dry.dry_run and dry.tags == 1 and dry.manifests == [image.digest]
    assert set(dry.blobs) == set(image.blobs)
    assert all(registry.stored(digest) for digest in image.blobs)
    assert registry.manifest_row("dry", image.digest)
    real = registry.gc(after=LATER)
    assert real.manifests == dry.manifests and sorted(real.blobs) == sorted(dry.blobs)


def test_quota_usage_drops_and_matches_a_recount(registry: Registry) -> None:
    registry.set_window(0)
    keep = registry.push_image("quota", "keep", [layer("keep", 5000)])
    drop = registry.push_image("quota", "drop", [layer("drop", 7000)])
    with registry.sessions() as session:
        before = quota.recalculate_namespace(session, registry.namespace(session))
        session.commit()
    registry.delete_tag("quota", "drop")
    registry.gc(after=LATER)
    with registry.sessions() as session:
        namespace = registry.namespace(session)
        row = session.scalar(
            select(NamespaceSize).where(NamespaceSize.namespace_id == namespace.id)
        )
        recount = quota.compute_namespace_size(session, namespace.id)
    dropped = sum(len(data) for digest, data in drop.blobs.items() if digest not in keep.blobs)
    assert row is not None and row.size_bytes == recount == before - dropped


def test_abandoned_uploads_are_removed_with_their_bytes(registry: Registry) -> None:
    with registry.sessions() as session:
        repo = registry.repository(session, "abandoned")
        upload = uploads.start_upload(session, registry.store, repo.id)
        session.commit()
        appender = uploads.open_appender(session, registry.store, repo.id, upload.uuid, None)
        appender.write(b"partial bytes")
        uploads.record_progress(session, appender, appender.finish())
        session.commit()
        appender.release()
        upload_uuid, state = upload.uuid, uploads._state(appender.upload)
    assert registry.gc(after=dt.timedelta(hours=1)).uploads == 0
    assert registry.gc(after=dt.timedelta(days=3)).uploads == 1
    with registry.sessions() as session:
        assert session.scalar(select(BlobUpload).where(BlobUpload.uuid == upload_uuid)) is None
    with pytest.raises(StorageError):
        b"".join(registry.store.read_upload(upload_uuid, state))


def test_deleted_repositories_are_reclaimed(registry: Registry) -> None:
    image = registry.push_image("doomed", "latest", [layer("doomed")])
    pending = registry.push_blob("doomed", layer("pending"))
    with registry.sessions() as session:
        repo = registry.repository(session, "doomed")
        repo_id = repo.id
        repositories.mark_deleted(session, repo)
        session.commit()
    report = registry.gc()
    assert report.repositories == 1
    assert set(report.blobs) == {*image.blobs, pending}
    assert not any(registry.stored(digest) for digest in report.blobs)
    with registry.sessions() as session:
        assert session.get(Repository, repo_id) is None


def test_gc_command_dry_run_why_and_pass(registry: Registry, server) -> None:
    registry.set_window(0)
    kept = registry.push_image("cli", "kept", [layer("kept")])
    gone = registry.push_image("cli", "gone", [layer("gone")])
    registry.delete_tag("cli", "gone")

    def cargohold(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "cargohold.cli", "--config-dir", str(server.workdir), *args],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    why = cargohold("gc", "--why", kept.digest)
    assert "tag 'kept' is alive" in why
    layer_digest = next(iter(kept.blobs))
    assert f"referenced by manifest {kept.digest}" in cargohold("gc", "--why", layer_digest)
    dry = cargohold("gc", "--dry-run", "--namespace", registry.owner.username)
    assert f"manifest {gone.digest}" in dry and f"manifest {kept.digest}" not in dry
    assert registry.manifest_row("cli", gone.digest)
    cargohold("gc", "--namespace", registry.owner.username)
    assert not registry.manifest_row("cli", gone.digest)
    registry.pull(kept)
    assert "nothing keeps" in cargohold("gc", "--why", gone.digest)


def test_unknown_namespace_is_an_error(server) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cargohold.cli",
            "--config-dir",
            str(server.workdir),
            "gc",
            "--namespace",
            f"nobody{uuid.uuid4().hex[:8]}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 1 and "no namespace" in result.stderr


def test_the_worker_collects_in_the_background(server_factory) -> None:
    live = server_factory({"FEATURE_GARBAGE_COLLECTION": True, "GARBAGE_COLLECTION_FREQUENCY": 1})
    registry = Registry(live, create_user(live))
    try:
        registry.set_window(0)
        image = registry.push_image("worker", "gone", [layer("worker")])
        registry.delete_tag("worker", "gone")

        def collected() -> bool:
            return not registry.manifest_row("worker", image.digest) and not any(
                registry.stored(digest) for digest in image.blobs
            )

        deadline = time.monotonic() + 30
        while not collected() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert collected()
    finally:
        registry.close()
