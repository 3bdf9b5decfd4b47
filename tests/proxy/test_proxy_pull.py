"""Pull-through with real clients: skopeo and podman pull `org/<path>` from a docker-registry."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy import select

from cargohold.db.models.accounts import User
from cargohold.db.models.quota import NamespaceQuota
from tests.proxy.conftest import UPSTREAM_CREDENTIALS, ProxyOrg
from tests.support.registry import make_image, sha256, write_oci_layout
from tests.support.server import LiveServer
from tests.support.upstream import UpstreamRegistry

pytestmark = pytest.mark.slow


def run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def configure(org: ProxyOrg, upstream: UpstreamRegistry, **extra) -> None:
    user, password = UPSTREAM_CREDENTIALS
    response = org.configure(
        f"{upstream.host}/team",
        upstream_registry_username=user,
        upstream_registry_password=password,
        **extra,
    )
    assert response.status_code == 201, response.text


def skopeo_pull(server: LiveServer, org: ProxyOrg, ref: str, target: Path) -> None:
    run(
        "skopeo", "--insecure-policy", "copy", "--all", "--src-tls-verify=false",
        "--src-creds", f"{org.owner.username}:{org.owner.password}",
        f"docker://{server.host}/{org.org}/{ref}", f"oci:{target}:pulled",
    )  # fmt: skip


def layout_blobs(layout: Path) -> dict[str, bytes]:
    root = layout / "blobs" / "sha256"
    return {f"sha256:{path.name}": path.read_bytes() for path in root.iterdir()}


def pulled_digest(layout: Path) -> str:
    return json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]


def test_skopeo_pulls_single_image_byte_identical(proxy_server, org, upstream, tmp_path):
    image = make_image({"app.txt": b"single image"})
    digest = upstream.push("team/app", "v1", image, tmp_path)
    configure(org, upstream)
    skopeo_pull(proxy_server, org, "app:v1", tmp_path / "pulled")
    assert pulled_digest(tmp_path / "pulled") == digest
    stored = layout_blobs(tmp_path / "pulled")
    for blob in image.blobs:
        assert stored[blob.digest] == blob.data
    assert stored[digest] == image.manifest


def test_multi_arch_index_and_children(proxy_server, org, upstream, tmp_path):
    images = [make_image(arch="amd64"), make_image(arch="arm64")]
    index_digest = upstream.push_index("team/multi", "all", images, tmp_path)
    configure(org, upstream)
    skopeo_pull(proxy_server, org, "multi:all", tmp_path / "pulled")
    assert pulled_digest(tmp_path / "pulled") == index_digest
    stored = layout_blobs(tmp_path / "pulled")
    for image in images:
        assert stored[image.digest] == image.manifest
        for blob in image.blobs:
            assert stored[blob.digest] == blob.data


def test_cached_content_serves_while_upstream_is_down(
    proxy_server, org, tmp_path_factory, tmp_path
):
    own = UpstreamRegistry(tmp_path_factory.mktemp("down-upstream"), UPSTREAM_CREDENTIALS).start()
    try:
        image = make_image({"down.txt": b"cached before the outage"})
        digest = own.push("team/app", "v1", image, tmp_path)
        # A short lifetime: the second pull finds the tag expired and must ask the upstream.
        configure(org, own, expiration_s=1)
        skopeo_pull(proxy_server, org, "app:v1", tmp_path / "first")
    finally:
        own.stop()
    time.sleep(1.5)
    skopeo_pull(proxy_server, org, "app:v1", tmp_path / "second")
    assert pulled_digest(tmp_path / "second") == digest
    assert layout_blobs(tmp_path / "second")[image.layers[0].digest] == image.layers[0].data


def test_upstream_tag_change_is_seen_after_expiration(proxy_server, org, upstream, tmp_path):
    first = make_image({"v.txt": b"first"})
    second = make_image({"v.txt": b"second"})
    upstream.push("team/moving", "latest", first, tmp_path / "a")
    configure(org, upstream, expiration_s=6)
    skopeo_pull(proxy_server, org, "moving:latest", tmp_path / "p1")
    assert pulled_digest(tmp_path / "p1") == first.digest
    upstream.push("team/moving", "latest", second, tmp_path / "b")
    # Within expiration_s the cached tag answers without asking the upstream.
    skopeo_pull(proxy_server, org, "moving:latest", tmp_path / "p2")
    assert pulled_digest(tmp_path / "p2") == first.digest
    time.sleep(6.5)
    skopeo_pull(proxy_server, org, "moving:latest", tmp_path / "p3")
    assert pulled_digest(tmp_path / "p3") == second.digest


@pytest.fixture
def podman_storage() -> Iterator[list[str]]:
    root = Path(tempfile.mkdtemp(prefix="chp-", dir="/tmp"))
    yield ["--root", str(root / "r"), "--runroot", str(root / "rr"), "--storage-driver", "vfs"]
    shutil.rmtree(root, ignore_errors=True)


def test_podman_pulls_single_and_multi_arch(proxy_server, org, upstream, tmp_path, podman_storage):
    single = make_image({"p.txt": b"podman single"})
    upstream.push("team/pod", "one", single, tmp_path / "s")
    images = [make_image(arch="amd64"), make_image(arch="arm64")]
    index_digest = upstream.push_index("team/pod", "many", images, tmp_path / "m")
    configure(org, upstream)
    creds = f"--creds={org.owner.username}:{org.owner.password}"
    for tag, expected in (("one", single.digest), ("many", index_digest)):
        ref = f"{proxy_server.host}/{org.org}/pod:{tag}"
        run("podman", *podman_storage, "pull", "--tls-verify=false", creds, ref)
        digest = run(
            "podman", *podman_storage, "image", "inspect", "--format", "{{.Digest}}", ref
        ).strip()
        assert digest == expected


def test_pushes_into_a_proxy_organization_are_refused(proxy_server, org, upstream, tmp_path):
    configure(org, upstream)
    image = make_image({"push.txt": b"not allowed"})
    layout = tmp_path / "layout"
    write_oci_layout(layout, {"latest": image})
    result = subprocess.run(
        [
            "skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
            "--dest-creds", f"{org.owner.username}:{org.owner.password}",
            f"oci:{layout}:latest", f"docker://{proxy_server.host}/{org.org}/pushed:latest",
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode != 0
    assert "unauthorized" in result.stderr.lower() or "denied" in result.stderr.lower()
    token = httpx.get(
        f"{proxy_server.url}/v2/auth",
        params={"service": proxy_server.host, "scope": f"repository:{org.org}/pushed:pull,push"},
        auth=(org.owner.username, org.owner.password),
    ).json()["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["access"][0]["actions"] == ["pull"]


def test_blob_bytes_match_digest(proxy_server, org, upstream, tmp_path):
    image = make_image({"check.txt": b"x" * 1000})
    upstream.push("team/check", "v1", image, tmp_path)
    configure(org, upstream)
    skopeo_pull(proxy_server, org, "check:v1", tmp_path / "pulled")
    for digest, data in layout_blobs(tmp_path / "pulled").items():
        assert sha256(data) == digest


def test_quota_evicts_the_oldest_cached_tag(proxy_server, org, upstream, tmp_path):
    old = make_image({"old.bin": secrets.token_bytes(600_000)})
    new = make_image({"new.bin": secrets.token_bytes(600_000)})
    upstream.push("team/quota", "old", old, tmp_path / "o")
    upstream.push("team/quota", "new", new, tmp_path / "n")
    configure(org, upstream)
    with proxy_server.db() as session:
        org_id = session.scalar(select(User.id).where(User.username == org.org))
        session.add(NamespaceQuota(namespace_id=org_id, limit_bytes=1_000_000))
    skopeo_pull(proxy_server, org, "quota:old", tmp_path / "p-old")
    skopeo_pull(proxy_server, org, "quota:new", tmp_path / "p-new")
    assert pulled_digest(tmp_path / "p-new") == new.digest
    alive = org.client.get(
        f"/api/v1/repository/{org.org}/quota/tag/", params={"onlyActiveTags": "true"}
    ).json()["tags"]
    assert [tag["name"] for tag in alive] == ["new"]
