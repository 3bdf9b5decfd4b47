"""GC after real skopeo pushes: images sharing a layer across repositories, one tag deleted and
its time-machine window passed; exactly the unshared blobs vanish, the kept image pulls intact."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import update

from cargohold.db.base import utcnow
from cargohold.db.models.accounts import User
from cargohold.db.models.registry import Manifest, RepositoryBlob, Tag
from tests.support.accounts import ALL_SCOPES, create_user, issue_token
from tests.support.registry import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Blob,
    Image,
    tar_layer,
    write_oci_layout,
)
from tests.support.server import LiveServer


def image_with_layers(layers: list[Blob], name: str) -> Image:
    config = Blob(
        json.dumps(
            {"architecture": "amd64", "os": "linux", "config": {"Labels": {"name": name}}}
        ).encode(),
        OCI_CONFIG,
    )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [layer.descriptor() for layer in layers],
        }
    ).encode()
    return Image(config, layers, manifest, OCI_MANIFEST)


def skopeo(*args: str) -> None:
    subprocess.run(["skopeo", *args], check=True, capture_output=True, timeout=120)


def test_gc_removes_exactly_the_blobs_of_the_expired_image(
    server: LiveServer, tmp_path: Path
) -> None:
    owner = create_user(server)
    creds = f"{owner.username}:{owner.password}"
    shared = Blob(tar_layer({"shared.txt": b"in both images"}), OCI_LAYER)
    kept_only = Blob(tar_layer({"kept.txt": b"only in the kept image"}), OCI_LAYER)
    gone_only = Blob(tar_layer({"gone.txt": b"only in the deleted image"}), OCI_LAYER)
    kept = image_with_layers([shared, kept_only], "kept")
    gone = image_with_layers([shared, gone_only], "gone")
    layout = write_oci_layout(tmp_path / "layout", {"kept": kept, "gone": gone})
    for tag, repo in (("kept", "app"), ("gone", "other")):
        skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            f"oci:{layout}:{tag}",
            f"docker://{server.host}/{owner.username}/{repo}:{tag}",
        )

    token = issue_token(server, owner.username, ALL_SCOPES)
    deleted = httpx.delete(
        f"{server.url}/api/v1/repository/{owner.username}/other/tag/gone",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert deleted.status_code == 204
    # Let the time machine window and the upload grace period pass.
    past = utcnow() - dt.timedelta(days=30)
    with server.db() as session:
        session.execute(
            update(User).where(User.username == owner.username).values(tag_expiration_s=0)
        )
        session.execute(update(RepositoryBlob).values(expires_at=past))
        session.execute(update(Manifest).values(created=past))
        session.execute(
            update(Tag)
            .where(Tag.name == "gone", Tag.lifetime_end_ms.is_not(None))
            .values(lifetime_end_ms=int(past.timestamp() * 1000))
        )

    store = server.store()
    assert all(store.blob_size(blob.digest) is not None for blob in [*kept.blobs, *gone.blobs])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cargohold.cli",
            "--config-dir",
            str(server.workdir),
            "gc",
            "--namespace",
            owner.username,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=server.workdir,
    )
    assert result.returncode == 0, result.stderr

    assert store.blob_size(gone_only.digest) is None
    assert store.blob_size(gone.config.digest) is None
    for blob in kept.blobs:
        assert store.blob_size(blob.digest) == len(blob.data)

    pulled = tmp_path / "pulled"
    skopeo(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        creds,
        f"docker://{server.host}/{owner.username}/app:kept",
        f"oci:{pulled}:kept",
    )
    for blob in kept.blobs:
        assert (pulled / "blobs" / "sha256" / blob.digest.split(":")[1]).read_bytes() == blob.data


def test_upload_grace_period_is_configurable(server_factory) -> None:
    from sqlalchemy import select

    from cargohold.db.models.registry import Blob as BlobRow
    from tests.support.registry import pull_push, push_blob, token_for, v2_client

    live = server_factory({"BLOB_UPLOAD_GRACE_SEC": 120})
    owner = create_user(live)
    repo = f"{owner.username}/graced"
    token = token_for(live, (owner.username, owner.password), pull_push(repo))
    before = utcnow()
    with v2_client(live, token) as client:
        digest = push_blob(client, repo, b"not referenced by any manifest yet")
    with live.db() as session:
        blob_id = session.scalar(select(BlobRow.id).where(BlobRow.digest == digest))
        expires = session.scalar(
            select(RepositoryBlob.expires_at).where(RepositoryBlob.blob_id == blob_id)
        )
    assert before + dt.timedelta(seconds=110) <= expires <= utcnow() + dt.timedelta(seconds=130)
