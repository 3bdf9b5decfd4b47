"""Immutability policies: covered tags refuse skopeo pushes, moves, deletes, expirations and
restores, through /v2 and the API alike; tags no policy covers behave as always."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.organizations import log_entries
from tests.support.registry import make_image, push_image, token_for, v2_client, write_oci_layout
from tests.support.server import LiveServer


def skopeo_push(server: LiveServer, user: TestUser, layout: Path, tag: str, target: str):
    return subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            f"{user.username}:{user.password}",
            f"oci:{layout}:{tag}",
            f"docker://{server.host}/{target}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def tag_row(client: httpx.Client, repo: str, name: str) -> dict:
    rows = client.get(
        f"/api/v1/repository/{repo}/tag/?specificTag={name}&onlyActiveTags=true"
    ).json()["tags"]
    assert len(rows) == 1, rows
    return rows[0]


def test_covered_tags_refuse_every_change(server: LiveServer, tmp_path: Path) -> None:
    owner = create_user(server)
    org = create_organization(server, owner)
    repo = f"{org}/app"
    first, second = make_image(), make_image()
    layout = write_oci_layout(tmp_path / "layout", {"first": first, "second": second})
    for tag in ("v1", "latest", "rel-1", "dev"):
        pushed = skopeo_push(server, owner, layout, "first", f"{repo}:{tag}")
        assert pushed.returncode == 0, pushed.stderr

    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as client:
        org_policy = client.post(
            f"/api/v1/organization/{org}/immutabilitypolicy/", json={"tagPattern": "v[0-9]+"}
        )
        assert org_policy.status_code == 201
        repo_policy = client.post(
            f"/api/v1/repository/{repo}/immutabilitypolicy/", json={"tagPattern": "rel-.*"}
        )
        assert repo_policy.status_code == 201
        # Existing tags the policies cover became immutable; the others did not.
        assert tag_row(client, repo, "v1")["immutable"] is True
        assert tag_row(client, repo, "rel-1")["immutable"] is True
        assert tag_row(client, repo, "latest")["immutable"] is False
        assert tag_row(client, repo, "dev")["immutable"] is False
        counts = [e["count"] for e in log_entries(server, "tags_made_immutable_by_policy", org)]
        assert counts == [1, 1]

        # A tag pushed after the policy starts immutable; its first push succeeds.
        pushed = skopeo_push(server, owner, layout, "first", f"{repo}:v2")
        assert pushed.returncode == 0, pushed.stderr
        assert tag_row(client, repo, "v2")["immutable"] is True
        # "v22x" is not a whole match of the org pattern.
        assert skopeo_push(server, owner, layout, "first", f"{repo}:v22x").returncode == 0
        assert tag_row(client, repo, "v22x")["immutable"] is False

        for tag in ("v1", "v2", "rel-1"):
            refused = skopeo_push(server, owner, layout, "second", f"{repo}:{tag}")
            assert refused.returncode != 0
            assert "immutable" in refused.stderr
            assert tag_row(client, repo, tag)["manifest_digest"] == first.digest
        for tag in ("latest", "dev", "v22x"):
            moved = skopeo_push(server, owner, layout, "second", f"{repo}:{tag}")
            assert moved.returncode == 0, moved.stderr
            assert tag_row(client, repo, tag)["manifest_digest"] == second.digest

        token = token_for(server, (owner.username, owner.password), f"repository:{repo}:pull,push")
        with v2_client(server, token) as v2:
            response = push_image(v2, repo, second, "v1")
            assert response.status_code == 409
            assert response.json()["errors"][0]["code"] == "TAG_IMMUTABLE"
            deleted = v2.delete(f"/v2/{repo}/manifests/v1")
            assert deleted.status_code == 409

        url = f"/api/v1/repository/{repo}/tag"
        expiry = time.time() + 7 * 86400
        for tag in ("v1", "rel-1"):
            for response in (
                client.delete(f"{url}/{tag}"),
                client.put(f"{url}/{tag}", json={"manifest_digest": second.digest}),
                client.put(f"{url}/{tag}", json={"expiration": expiry}),
                client.post(f"{url}/{tag}/restore", json={"manifest_digest": second.digest}),
            ):
                assert response.status_code == 409, response.text
                assert response.json()["error_type"] == "tag_immutable"
            row = tag_row(client, repo, tag)
            assert row["manifest_digest"] == first.digest and "end_ts" not in row
        # Creating a covered tag through the API is allowed; it is then immutable.
        assert client.put(f"{url}/v3", json={"manifest_digest": first.digest}).status_code == 201
        assert tag_row(client, repo, "v3")["immutable"] is True

        assert client.put(f"{url}/dev", json={"expiration": expiry}).status_code == 201
        assert (
            client.put(f"{url}/latest", json={"manifest_digest": first.digest}).status_code == 201
        )
        assert client.delete(f"{url}/latest").status_code == 204
        restored = client.post(f"{url}/latest/restore", json={"manifest_digest": second.digest})
        assert restored.status_code == 200

        # Removing the policy leaves existing flags (as Quay does); an admin then clears one.
        org_uuid = org_policy.json()["uuid"]
        assert (
            client.delete(f"/api/v1/organization/{org}/immutabilitypolicy/{org_uuid}").status_code
            == 200
        )
        assert tag_row(client, repo, "v1")["immutable"] is True
        assert client.put(f"{url}/v1", json={"immutable": False}).status_code == 201
        assert client.delete(f"{url}/v1").status_code == 204
        pushed = skopeo_push(server, owner, layout, "second", f"{repo}:v1")
        assert pushed.returncode == 0, pushed.stderr
        assert tag_row(client, repo, "v1")["immutable"] is False
