"""Quota enforcement on real pushes: skopeo, and each step of the protocol by hand."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from cargohold.db.models.registry import BlobUpload, Repository
from tests.superuser.conftest import Callers
from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
    unique,
)
from tests.support.registry import (
    OCI_MANIFEST,
    Blob,
    Image,
    make_image,
    pull_push,
    push_blob,
    sha256,
    token_for,
    v2_client,
    write_oci_layout,
)
from tests.support.server import LiveServer

pytestmark = pytest.mark.slow

DENIED = {
    "errors": [{"code": "DENIED", "message": "Quota has been exceeded on namespace", "detail": {}}]
}


def _random_image(size: int) -> Image:
    """Random bytes do not compress: the layer is about `size` bytes."""
    return make_image({"data.bin": os.urandom(size)})


def _two_layer_image(size: int) -> Image:
    base = _random_image(size)
    extra = make_image({"more.bin": os.urandom(size)})
    layers = [*base.layers, *extra.layers]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": base.config.descriptor(),
            "layers": [layer.descriptor() for layer in layers],
        }
    ).encode()
    return Image(base.config, layers, manifest, OCI_MANIFEST)


def _size(*images: Image) -> int:
    """What the namespace should use: each distinct blob (configs included) once."""
    distinct: dict[str, Blob] = {blob.digest: blob for image in images for blob in image.blobs}
    return sum(len(blob.data) for blob in distinct.values())


def _skopeo_push(server: LiveServer, user: TestUser, layout: Path, dest: str):
    return subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"--dest-creds={user.username}:{user.password}",
            "--retry-times=0",
            f"oci:{layout}:latest",
            f"docker://{server.host}/{dest}:latest",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


class QuotaOrg:
    """An organization with a quota and one 100% Reject limit, managed through the API."""

    def __init__(self, server: LiveServer, callers: Callers, limit_bytes: int) -> None:
        self.server = server
        self.admin = callers.admin
        self.owner = create_user(server)
        self.name = create_organization(server, self.owner)
        base = f"/api/v1/organization/{self.name}/quota"
        assert self.admin.post(base, json={"limit_bytes": limit_bytes}).status_code == 201
        self.quota_id = self.admin.get(base).json()[0]["id"]
        limit = self.admin.post(
            f"{base}/{self.quota_id}/limit", json={"type": "Reject", "threshold_percent": 100}
        )
        assert limit.status_code == 201

    def set_limit(self, limit_bytes: int) -> None:
        path = f"/api/v1/organization/{self.name}/quota/{self.quota_id}"
        assert self.admin.put(path, json={"limit_bytes": limit_bytes}).status_code == 200

    def usage(self) -> int:
        token = issue_token(self.server, self.owner.username, ALL_SCOPES)
        with bearer_client(self.server, token) as client:
            report = client.get(f"/api/v1/organization/{self.name}").json()["quota_report"]
        return report["quota_bytes"]

    def notifications(self) -> list[tuple[str, dict]]:
        token = issue_token(self.server, self.owner.username, ALL_SCOPES)
        with bearer_client(self.server, token) as client:
            listed = client.get("/api/v1/user/notifications", params={"limit": 50}).json()
        return [(item["kind"], item["metadata"]) for item in listed["notifications"]]

    def client(self, repo: str) -> httpx.Client:
        auth = (self.owner.username, self.owner.password)
        return v2_client(self.server, token_for(self.server, auth, pull_push(repo)))

    def uploads_in_progress(self) -> int:
        with self.server.db() as session:
            return session.scalar(
                select(func.count())
                .select_from(BlobUpload)
                .join(Repository, Repository.id == BlobUpload.repository_id)
                .where(Repository.namespace_user.has(username=self.name))
            )


def test_skopeo_push_is_refused_over_the_limit_and_succeeds_once_raised(
    full_access_server: LiveServer, full_callers: Callers, tmp_path: Path
) -> None:
    first, second = _random_image(300_000), _random_image(300_000)
    first_layout = write_oci_layout(tmp_path / "first", {"latest": first})
    second_layout = write_oci_layout(tmp_path / "second", {"latest": second})
    org = QuotaOrg(full_access_server, full_callers, 500_000)

    pushed = _skopeo_push(full_access_server, org.owner, first_layout, f"{org.name}/one")
    assert pushed.returncode == 0, pushed.stderr
    assert org.usage() == _size(first)

    refused = _skopeo_push(full_access_server, org.owner, second_layout, f"{org.name}/two")
    assert refused.returncode != 0
    assert "Quota has been exceeded on namespace" in refused.stderr
    assert org.usage() == _size(first)
    assert org.uploads_in_progress() == 0
    with org.client(f"{org.name}/two") as client:
        assert client.get(f"/v2/{org.name}/two/manifests/latest").status_code == 404

    org.set_limit(2_000_000)
    again = _skopeo_push(full_access_server, org.owner, second_layout, f"{org.name}/two")
    assert again.returncode == 0, again.stderr
    assert org.usage() == _size(first, second)

    # The same image in another repository of the namespace costs nothing more.
    shared = _skopeo_push(full_access_server, org.owner, first_layout, f"{org.name}/three")
    assert shared.returncode == 0, shared.stderr
    assert org.usage() == _size(first, second)


def test_each_push_step_enforces_the_limit(
    full_access_server: LiveServer, full_callers: Callers
) -> None:
    org = QuotaOrg(full_access_server, full_callers, 10_000_000)
    repo = f"{org.name}/{unique('app')}"
    base_image = _random_image(50_000)
    with org.client(repo) as client:
        for blob in base_image.blobs:
            push_blob(client, repo, blob.data)
        put = client.put(
            f"/v2/{repo}/manifests/base",
            content=base_image.manifest,
            headers={"Content-Type": base_image.media_type},
        )
        assert put.status_code == 201
        used = org.usage()
        assert used == _size(base_image)

        # Each layer fits on its own; the manifest that references both does not.
        image = _two_layer_image(200_000)
        org.set_limit(used + 300_000)
        for blob in image.blobs:
            push_blob(client, repo, blob.data)
        refused = client.put(
            f"/v2/{repo}/manifests/big",
            content=image.manifest,
            headers={"Content-Type": image.media_type},
        )
        assert refused.status_code == 403
        assert refused.json() == DENIED
        assert client.get(f"/v2/{repo}/manifests/big").status_code == 404
        assert client.get(f"/v2/{repo}/manifests/{image.digest}").status_code == 404
        assert org.usage() == used

        # A chunk that would cross the limit is refused and the upload is dropped.
        org.set_limit(used + 100_000)
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202
        location = started.headers["location"]
        chunk = client.patch(
            location,
            content=os.urandom(150_000),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert chunk.status_code == 403
        assert chunk.json() == DENIED
        assert client.get(location).status_code == 404
        assert org.uploads_in_progress() == 0

        # A monolithic upload over the limit is refused before anything is stored.
        data = os.urandom(120_000)
        digest = sha256(data)
        monolithic = client.post(
            f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data
        )
        assert monolithic.status_code == 403
        assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
        # A streamed body of unannounced length is counted once it has arrived.
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        streamed = client.put(
            started.headers["location"], params={"digest": digest}, content=iter([data])
        )
        assert streamed.status_code == 403
        assert streamed.json() == DENIED
        assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
        assert org.uploads_in_progress() == 0

        # Once the namespace is at its limit, no upload may even start.
        org.set_limit(used)
        blocked = client.post(f"/v2/{repo}/blobs/uploads/")
        assert blocked.status_code == 403
        assert blocked.json() == DENIED
        assert org.uploads_in_progress() == 0
        # A manifest is refused before its blobs are looked up: these were never pushed.
        unknown_blobs = _random_image(1_000)
        manifest_put = client.put(
            f"/v2/{repo}/manifests/unknown",
            content=unknown_blobs.manifest,
            headers={"Content-Type": unknown_blobs.media_type},
        )
        assert manifest_put.status_code == 403
        assert manifest_put.json() == DENIED
        assert client.get(f"/v2/{repo}/manifests/unknown").status_code == 404
        assert org.usage() == used

        # Every refusal told the organization's admins, once.
        assert org.notifications() == [
            ("quota_error", {"severity": "Reject", "namespace": org.name})
        ]

        # Raising the limit lets the refused manifest through; a crossed Warning only tells.
        org.set_limit(used + 1_000_000)
        warning = org.admin.post(
            f"/api/v1/organization/{org.name}/quota/{org.quota_id}/limit",
            json={"type": "Warning", "threshold_percent": 10},
        )
        assert warning.status_code == 201
        accepted = client.put(
            f"/v2/{repo}/manifests/big",
            content=image.manifest,
            headers={"Content-Type": image.media_type},
        )
        assert accepted.status_code == 201
        assert org.usage() == _size(base_image, image)
        assert ("quota_warning", {"namespace": org.name}) in org.notifications()
