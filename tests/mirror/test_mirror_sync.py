"""Mirroring for real: skopeo copies from a live docker-registry into cargohold's /v2."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mirror.conftest import UPSTREAM_CREDENTIALS, MirrorSetup, mirror_setup
from tests.support.organizations import log_entries
from tests.support.registry import make_image
from tests.support.server import LiveServer
from tests.support.upstream import UpstreamRegistry

pytestmark = pytest.mark.slow
TERMINAL = {"SUCCESS", "FAIL", "CANCEL"}


@pytest.fixture
def setup(mirror_server: LiveServer) -> Iterator[MirrorSetup]:
    made = mirror_setup(mirror_server)
    yield made
    made.client.close()


def configure(setup: MirrorSetup, reference: str, globs: list[str], **extra) -> None:
    body = {
        "external_reference": reference,
        "sync_interval": 3600,
        "sync_start_date": "2030-01-01T00:00:00Z",
        "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": globs},
        "skopeo_timeout_interval": 300,
        "robot_username": setup.robot,
        "external_registry_config": {"verify_tls": False},
        **extra,
    }
    response = setup.client.post(setup.url, json=body)
    assert response.status_code == 201, response.text


def sync(setup: MirrorSetup, timeout: float = 180) -> dict:
    """Ask for a sync and wait for its outcome."""
    assert setup.client.post(setup.url + "/sync-now").status_code == 204
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = setup.client.get(setup.url).json()
        if view["sync_status"] in TERMINAL:
            return view
        time.sleep(0.3)
    raise AssertionError(f"sync did not finish: {view}")


def local_tags(setup: MirrorSetup) -> dict[str, str]:
    response = setup.client.get(
        f"/api/v1/repository/{setup.repo}/tag/", params={"onlyActiveTags": "true", "limit": 100}
    )
    assert response.status_code == 200, response.text
    return {tag["name"]: tag["manifest_digest"] for tag in response.json()["tags"]}


def pull_digest(server: LiveServer, setup: MirrorSetup, tag: str, scratch: Path) -> str:
    """Pull the tag with skopeo (every platform) and return the digest it was served with."""
    creds = f"{setup.owner.username}:{setup.owner.password}"
    source = f"docker://{server.host}/{setup.repo}:{tag}"
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", creds, source],
        check=True,
        capture_output=True,
    ).stdout
    target = scratch / f"pulled-{tag}"
    subprocess.run(
        [
            "skopeo", "--insecure-policy", "copy", "--all", "--src-tls-verify=false",
            "--src-creds", creds, source, f"oci:{target}:{tag}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    assert (target / "index.json").exists()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def blob_path(upstream: UpstreamRegistry, digest: str) -> Path:
    hexdigest = digest.split(":", 1)[1]
    return (
        upstream.workdir / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256"
        / hexdigest[:2] / hexdigest / "data"
    )  # fmt: skip


def test_mirror_follows_upstream_and_never_deletes_after_failure(
    mirror_server: LiveServer, upstream: UpstreamRegistry, setup: MirrorSetup, tmp_path: Path
) -> None:
    repo = f"upstream/{setup.owner.username}"
    images = {tag: make_image() for tag in ("v1.0", "v1.1", "v2.0", "latest")}
    digests = {tag: upstream.push(repo, tag, image, tmp_path) for tag, image in images.items()}
    digests["v1-multi"] = upstream.push_index(
        repo, "v1-multi", [make_image(arch="amd64"), make_image(arch="arm64")], tmp_path
    )
    configure(setup, f"{upstream.host}/{repo}", ["v1.*", "v1-multi"])

    first = sync(setup)
    assert first["sync_status"] == "SUCCESS", log_entries(mirror_server, "repo_mirror_sync_failed")
    assert first["sync_retries_remaining"] == 3
    expected = {tag: digests[tag] for tag in ("v1.0", "v1.1", "v1-multi")}
    assert local_tags(setup) == expected
    assert pull_digest(mirror_server, setup, "v1-multi", tmp_path) == digests["v1-multi"]
    assert pull_digest(mirror_server, setup, "v1.0", tmp_path) == digests["v1.0"]
    copied = log_entries(mirror_server, "repo_mirror_sync_tag_success")
    assert sorted(
        e["tag"]
        for e in copied
        if e["repo"] == "mirrored" and e["namespace"] == setup.owner.username
    ) == sorted(expected)

    # Upstream moves on: one tag deleted, one changed, one added.
    upstream.delete_tag(repo, "v1.0")
    changed = make_image()
    digests["v1.1"] = upstream.push(repo, "v1.1", changed, tmp_path / "changed")
    digests["v1.2"] = upstream.push(repo, "v1.2", make_image(), tmp_path)
    second = sync(setup)
    assert second["sync_status"] == "SUCCESS"
    expected = {tag: digests[tag] for tag in ("v1.1", "v1.2", "v1-multi")}
    assert local_tags(setup) == expected
    success = log_entries(mirror_server, "repo_mirror_sync_success")[-1]
    assert success["removed"] == ["v1.0"]

    # A tag that cannot be copied (its layer vanished upstream) while another tag was deleted:
    # the sync fails and nothing local is removed.
    broken = make_image()
    upstream.push(repo, "v1.3", broken, tmp_path / "broken")
    blob_path(upstream, broken.layers[0].digest).unlink()
    upstream.delete_tag(repo, "v1.2")
    third = sync(setup)
    assert third["sync_status"] == "FAIL"
    assert third["sync_retries_remaining"] == 2
    assert local_tags(setup) == expected
    failure = log_entries(mirror_server, "repo_mirror_sync_failed")[-1]
    assert failure["verb"] == "lost"
    assert "PARTIAL SYNC" in failure["message"] and "v1.3 (FAILED)" in failure["tags"]


def test_unreachable_upstream_fails_and_keeps_local_tags(
    mirror_server: LiveServer, tmp_path_factory: pytest.TempPathFactory, setup: MirrorSetup
) -> None:
    scratch = tmp_path_factory.mktemp("vanishing")
    upstream = UpstreamRegistry(scratch / "registry").start()
    try:
        digest = upstream.push("up/app", "stable", make_image(), scratch)
        configure(setup, f"{upstream.host}/up/app", ["*"])
        assert sync(setup)["sync_status"] == "SUCCESS"
    finally:
        upstream.stop()
    shutil.rmtree(scratch / "registry" / "data", ignore_errors=True)
    failed = sync(setup)
    assert failed["sync_status"] == "FAIL"
    assert local_tags(setup) == {"stable": digest}
    reason = log_entries(mirror_server, "repo_mirror_sync_failed")[-1]
    assert reason["message"] == "skopeo list-tags failed: See output"
    assert reason["stderr"]


def test_basic_auth_upstream(
    mirror_server: LiveServer,
    secured_upstream: UpstreamRegistry,
    setup: MirrorSetup,
    tmp_path: Path,
) -> None:
    repo = f"private/{setup.owner.username}"
    digest = secured_upstream.push(repo, "1.0", make_image(), tmp_path)
    user, password = UPSTREAM_CREDENTIALS
    configure(
        setup,
        f"{secured_upstream.host}/{repo}",
        ["1.*"],
        external_registry_username=user,
        external_registry_password="wrong-password",
    )
    refused = sync(setup)
    assert refused["sync_status"] == "FAIL"
    entries = log_entries(mirror_server, "repo_mirror_sync_failed")
    assert "wrong-password" not in json.dumps(entries)
    changed = setup.client.put(
        setup.url,
        json={"external_registry_username": user, "external_registry_password": password},
    )
    assert changed.status_code == 201
    accepted = sync(setup)
    assert accepted["sync_status"] == "SUCCESS"
    assert local_tags(setup) == {"1.0": digest}
    assert pull_digest(mirror_server, setup, "1.0", tmp_path) == digest


def test_cancel_stops_a_requested_sync(
    mirror_server: LiveServer, upstream: UpstreamRegistry, setup: MirrorSetup, tmp_path: Path
) -> None:
    repo = f"cancel/{setup.owner.username}"
    upstream.push(repo, "a", make_image(), tmp_path)
    configure(setup, f"{upstream.host}/{repo}", ["*"], is_enabled=False)
    assert setup.client.post(setup.url + "/sync-now").status_code == 204
    assert setup.client.post(setup.url + "/sync-cancel").status_code == 204
    time.sleep(3)
    view = setup.client.get(setup.url).json()
    assert view["sync_status"] == "CANCEL"
    assert view["sync_retries_remaining"] == 0
