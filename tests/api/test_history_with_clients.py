"""Tag history built with real pushes (skopeo), then read and changed through the API by
every kind of caller: owner, reader, writer, admin, robot, another user and anonymous."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import httpx
import pytest

from cargohold.db.models.registry import Role
from tests.support.registry import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Blob,
    Image,
    sha256,
    tar_layer,
    token_for,
    v2_client,
    write_oci_layout,
)
from tests.support.repos import Cast, create_robot, grant, share
from tests.support.server import LiveServer

pytestmark = pytest.mark.slow
CALLERS = ("owner", "admin", "writer", "reader", "stranger", "anonymous")
READERS = {"owner", "admin", "writer", "reader"}
WRITERS = {"owner", "admin", "writer"}


def image_with_history(text: str) -> Image:
    layer = Blob(tar_layer({"file.txt": text.encode()}), OCI_LAYER)
    config = Blob(
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [sha256(gzip.decompress(layer.data))]},
                "history": [
                    {
                        "created": "2025-01-02T03:04:05Z",
                        "created_by": f"COPY {text} /file.txt",
                        "author": "cargohold tests",
                    },
                    {"created": "2025-01-02T03:04:06Z", "created_by": "CMD x", "empty_layer": True},
                ],
            }
        ).encode(),
        OCI_CONFIG,
    )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
        }
    ).encode()
    return Image(config, [layer], manifest, OCI_MANIFEST)


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, timeout=300, check=False
    )


def push(server: LiveServer, layout: Path, reference: str, creds: str) -> None:
    result = skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"--dest-creds={creds}",
        f"oci:{layout}:latest",
        f"docker://{server.host}/{reference}",
    )
    assert result.returncode == 0, result.stderr


def inspect_digest(server: LiveServer, reference: str, creds: str | None) -> str | None:
    auth = [f"--creds={creds}"] if creds else ["--no-creds"]
    result = skopeo(
        "inspect", "--raw", "--tls-verify=false", *auth, f"docker://{server.host}/{reference}"
    )
    if result.returncode != 0:
        return None
    return sha256(result.stdout.encode())


@pytest.fixture(scope="module")
def pushed(cast: Cast, tmp_path_factory: pytest.TempPathFactory) -> dict:
    server = cast.server
    owner = cast.owner
    owner_creds = f"{owner.username}:{owner.password}"
    images = {name: image_with_history(name) for name in ("alpha", "beta", "gamma")}
    root = tmp_path_factory.mktemp("history-layouts")
    layouts = {
        name: write_oci_layout(root / name, {"latest": image}) for name, image in images.items()
    }
    robot, robot_token = create_robot(server, owner.username, "pusher")
    private = f"{owner.username}/history"
    public = f"{owner.username}/history-public"
    push(server, layouts["alpha"], f"{private}:latest", owner_creds)
    share(cast, private)
    grant(server, private, robot, str(Role.write))
    push(server, layouts["beta"], f"{private}:latest", owner_creds)
    push(server, layouts["beta"], f"{private}:stable", owner_creds)
    push(server, layouts["gamma"], f"{private}:latest", f"{robot}:{robot_token}")
    push(server, layouts["alpha"], f"{public}:latest", owner_creds)
    made_public = cast.clients["owner"].post(
        f"/api/v1/repository/{public}/changevisibility", json={"visibility": "public"}
    )
    assert made_public.status_code == 200
    return {
        "private": private,
        "public": public,
        "digests": {name: image.digest for name, image in images.items()},
        "images": images,
        "robot": (robot, robot_token),
        "owner_creds": owner_creds,
    }


def listing(client: httpx.Client, path: str, query: str = "") -> httpx.Response:
    return client.get(f"/api/v1/repository/{path}/tag/?{query}")


def test_pushed_history_as_every_caller(cast: Cast, pushed: dict) -> None:
    digests = pushed["digests"]
    expected_order = [
        ("latest", digests["gamma"]),
        ("stable", digests["beta"]),
        ("latest", digests["beta"]),
        ("latest", digests["alpha"]),
    ]
    seen = {}
    for caller in CALLERS:
        response = listing(cast.clients[caller], pushed["private"])
        if caller in READERS:
            assert response.status_code == 200, caller
            seen[caller] = response.json()
        else:
            assert response.status_code == (401 if caller == "anonymous" else 403), caller
            assert "tags" not in response.json()
    body = seen["owner"]
    assert all(other == body for other in seen.values())
    rows = body["tags"]
    assert [(row["name"], row["manifest_digest"]) for row in rows] == expected_order
    images = pushed["images"]
    for row in rows:
        image = next(i for i in images.values() if i.digest == row["manifest_digest"])
        assert row["size"] == len(image.layers[0].data)
        assert row["is_manifest_list"] is False and row["reversion"] is False
    gamma, stable, beta, alpha = rows
    assert "end_ts" not in gamma and "end_ts" not in stable
    assert beta["end_ts"] >= beta["start_ts"] and alpha["end_ts"] >= alpha["start_ts"]
    assert alpha["end_ts"] <= beta["start_ts"] + 1 and beta["end_ts"] <= gamma["start_ts"] + 1
    for caller in CALLERS:
        public = listing(cast.clients[caller], pushed["public"])
        assert public.status_code == 200
        assert [row["manifest_digest"] for row in public.json()["tags"]] == [digests["alpha"]]


def test_repository_view_per_caller(cast: Cast, pushed: dict) -> None:
    expected = {
        "owner": (True, True),
        "admin": (True, True),
        "writer": (True, False),
        "reader": (False, False),
    }
    for caller in CALLERS:
        response = cast.clients[caller].get(f"/api/v1/repository/{pushed['private']}")
        if caller not in READERS:
            assert response.status_code == (401 if caller == "anonymous" else 403)
            continue
        body = response.json()
        assert (body["can_write"], body["can_admin"]) == expected[caller], caller
        assert set(body["tags"]) == {"latest", "stable"}
        assert body["tags"]["latest"]["manifest_digest"] == pushed["digests"]["gamma"]
        public = cast.clients[caller].get(f"/api/v1/repository/{pushed['public']}").json()
        assert public["is_public"] is True and public["status_token"] == ""
    anonymous = cast.clients["anonymous"].get(f"/api/v1/repository/{pushed['public']}").json()
    assert anonymous["can_write"] is False and anonymous["is_starred"] is False


def test_manifest_view_of_pushed_image(cast: Cast, pushed: dict) -> None:
    digest = pushed["digests"]["gamma"]
    url = f"/api/v1/repository/{pushed['private']}/manifest/{digest}"
    for caller in CALLERS:
        response = cast.clients[caller].get(url)
        if caller not in READERS:
            assert response.status_code == (401 if caller == "anonymous" else 403)
            continue
        body = response.json()
        assert body["digest"] == digest
        assert body["manifest_data"] == pushed["images"]["gamma"].manifest.decode()
        assert body["layers"] == [
            {
                "index": 0,
                "compressed_size": len(pushed["images"]["gamma"].layers[0].data),
                "is_remote": False,
                "urls": None,
                "command": ["COPY gamma /file.txt"],
                "comment": None,
                "author": "cargohold tests",
                "blob_digest": pushed["images"]["gamma"].layers[0].digest,
                "created_datetime": "Thu, 02 Jan 2025 03:04:05 -0000",
            }
        ]
    # A manifest only dead tags point at is not served by the manifest API.
    dead = f"/api/v1/repository/{pushed['private']}/manifest/{pushed['digests']['alpha']}"
    assert cast.clients["owner"].get(dead).status_code == 404


def test_delete_and_restore_change_what_clients_pull(cast: Cast, pushed: dict) -> None:
    server = cast.server
    private = pushed["private"]
    digests = pushed["digests"]
    creds = pushed["owner_creds"]
    tag_url = f"/api/v1/repository/{private}/tag/latest"
    for caller in ("reader", "stranger", "anonymous"):
        assert cast.clients[caller].delete(tag_url).status_code == 403
    assert inspect_digest(server, f"{private}:latest", creds) == digests["gamma"]
    assert cast.clients["writer"].delete(tag_url).status_code == 204
    assert inspect_digest(server, f"{private}:latest", creds) is None
    token = token_for(
        server, (cast.owner.username, cast.owner.password), f"repository:{private}:pull"
    )
    with v2_client(server, token) as registry:
        expired = registry.get(f"/v2/{private}/manifests/latest", headers={"Accept": OCI_MANIFEST})
    assert expired.status_code == 404
    assert expired.json()["errors"][0]["code"] == "TAG_EXPIRED"
    restore = f"{tag_url}/restore"
    for caller in ("reader", "stranger"):
        denied = cast.clients[caller].post(restore, json={"manifest_digest": digests["alpha"]})
        assert denied.status_code == 403
    restored = cast.clients["admin"].post(restore, json={"manifest_digest": digests["alpha"]})
    assert restored.status_code == 200 and restored.json() == {}
    assert inspect_digest(server, f"{private}:latest", creds) == digests["alpha"]
    robot, token = pushed["robot"]
    assert inspect_digest(server, f"{private}:latest", f"{robot}:{token}") == digests["alpha"]
    rows = listing(cast.clients["reader"], private, "specificTag=latest").json()["tags"]
    assert [(row["manifest_digest"], row["reversion"]) for row in rows] == [
        (digests["alpha"], True),
        (digests["gamma"], False),
        (digests["beta"], False),
        (digests["alpha"], False),
    ]
    assert "end_ts" not in rows[0] and "end_ts" in rows[1]
    moved = cast.clients["writer"].put(tag_url, json={"manifest_digest": digests["beta"]})
    assert moved.status_code == 201
    assert inspect_digest(server, f"{private}:latest", creds) == digests["beta"]
    for caller in ("reader", "stranger", "anonymous"):
        refused = cast.clients[caller].put(tag_url, json={"manifest_digest": digests["gamma"]})
        assert refused.status_code == 403


def test_robot_and_state_rules_at_the_registry(cast: Cast, pushed: dict, tmp_path: Path) -> None:
    server = cast.server
    robot, token = pushed["robot"]
    layout = write_oci_layout(tmp_path / "delta", {"latest": image_with_history("delta")})
    private = pushed["private"]
    public = pushed["public"]
    # The robot has no grant on the public repository: it may pull but not push there.
    assert inspect_digest(server, f"{public}:latest", f"{robot}:{token}") is not None
    denied = skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"--dest-creds={robot}:{token}",
        f"oci:{layout}:latest",
        f"docker://{server.host}/{public}:robot",
    )
    assert denied.returncode != 0
    assert inspect_digest(server, f"{public}:latest", None) == pushed["digests"]["alpha"]
    assert inspect_digest(server, f"{private}:latest", None) is None
    state_url = f"/api/v1/repository/{private}/changestate"
    assert cast.clients["owner"].put(state_url, json={"state": "READ_ONLY"}).status_code == 200
    try:
        refused = skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"--dest-creds={pushed['owner_creds']}",
            f"oci:{layout}:latest",
            f"docker://{server.host}/{private}:readonly",
        )
        assert refused.returncode != 0
        assert inspect_digest(server, f"{private}:stable", pushed["owner_creds"]) is not None
    finally:
        cast.clients["owner"].put(state_url, json={"state": "NORMAL"})
    push(server, layout, f"{private}:delta", f"{robot}:{token}")
    rows = listing(cast.clients["owner"], private, "specificTag=delta").json()["tags"]
    assert [row["manifest_digest"] for row in rows] == [sha256(json_manifest(layout))]


def json_manifest(layout: Path) -> bytes:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":", 1)[1]
    return (layout / "blobs" / "sha256" / digest).read_bytes()
