"""Bad request bodies and query values are refused with Quay's words, status and body shape."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cargohold.db.models.registry import Role
from cargohold.domain.quota import HUMAN_SIZE_PATTERN
from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.registry import (
    create_robot,
    make_image,
    make_repository,
    pull_push,
    push_image,
    token_for,
    v2_client,
)
from tests.support.server import LiveServer


@pytest.fixture(scope="module")
def admin_client(server: LiveServer, admin: TestUser) -> Iterator[httpx.Client]:
    with bearer_client(server, issue_token(server, admin.username, ALL_SCOPES)) as client:
        yield client


@pytest.fixture(scope="module")
def owner(server: LiveServer) -> TestUser:
    return create_user(server)


@pytest.fixture(scope="module")
def owner_client(server: LiveServer, owner: TestUser) -> Iterator[httpx.Client]:
    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as client:
        yield client


def refused(response: httpx.Response) -> str:
    """The detail of Quay's 400 invalid_request ApiError."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_type"] == "invalid_request" and body["title"] == "invalid_request"
    assert body["detail"] == body["error_message"]
    return body["detail"]


NOT_A_SIZE = f"'1.5G' does not match {HUMAN_SIZE_PATTERN!r}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "'limit_bytes' is a required property"),
        ({"limit_bytes": "x"}, "'x' is not of type 'integer'"),
        ({"limit_bytes": True}, "True is not of type 'integer'"),
        ({"limit": "1.5G"}, NOT_A_SIZE),
        ({"limit": 5}, "5 is not of type 'string'"),
        ({"limit_bytes": 5, "limit": [1]}, "[1] is not of type 'string'"),
        ("x", "'x' is not of type 'object'"),
        ([1], "[1] is not of type 'object'"),
    ],
)
def test_quota_bodies(server, admin_client, owner, body, message) -> None:
    org = create_organization(server, owner)
    for path in (
        f"/api/v1/superuser/users/{owner.username}/quota",
        f"/api/v1/superuser/organization/{org}/quota",
        f"/api/v1/organization/{org}/quota",
    ):
        assert refused(admin_client.post(path, json=body)) == message, path
    for namespace in (f"users/{owner.username}", f"organization/{org}"):
        assert admin_client.get(f"/api/v1/superuser/{namespace}/quota").json() == []


def test_quota_size_words_differ_per_path(server, admin_client, owner) -> None:
    org = create_organization(server, owner)
    superuser_path = f"/api/v1/superuser/organization/{org}/quota"
    assert refused(admin_client.post(superuser_path, json={"limit": "100B"})) == (
        "Invalid limit format"
    )
    assert refused(
        admin_client.post(f"/api/v1/organization/{org}/quota", json={"limit": "1B"})
    ) == ("Invalid limit format, use a number followed by a unit (e.g. 1GiB)")
    assert admin_client.post(superuser_path, json={"limit": "2G"}).status_code == 201
    quota_id = admin_client.get(superuser_path).json()[0]["id"]
    change = f"{superuser_path}/{quota_id}"
    assert refused(admin_client.put(change, json={"limit": "1.5G"})) == NOT_A_SIZE
    assert refused(admin_client.put(change, json={"limit_bytes": "x"})) == (
        "'x' is not of type 'integer'"
    )
    both = admin_client.put(change, json={"limit_bytes": 5, "limit": "5G"})
    assert refused(both) == "{} is not allowed for 5"
    assert refused(admin_client.put(change, json={"other": 1})) == (
        "'limit_bytes' is a required property"
    )
    assert admin_client.put(change, json={}).status_code == 200
    superscript_id = admin_client.put(f"{superuser_path}/\u00b9", json={})
    assert superscript_id.status_code == 404 and superscript_id.json()["error_type"] == "not_found"
    assert admin_client.get(superuser_path).json()[0]["limit_bytes"] == 2_000_000_000

    limits = f"/api/v1/organization/{org}/quota/{quota_id}/limit"
    assert refused(admin_client.post(limits, json={"type": "Reject"})) == (
        "'threshold_percent' is a required property"
    )
    assert refused(admin_client.post(limits, json={"type": 5, "threshold_percent": 5})) == (
        "5 is not of type 'string'"
    )
    assert refused(
        admin_client.post(limits, json={"type": "Reject", "threshold_percent": "most"})
    ) == ("'most' is not of type 'integer'")


def test_service_key_bodies(admin_client) -> None:
    create = "/api/v1/superuser/keys"
    assert refused(admin_client.post(create, json={"service": "svc", "expiration": "x"})) == (
        "'x' is not of type 'number'"
    )
    assert refused(admin_client.post(create, json={"service": 5, "expiration": None})) == (
        "5 is not of type 'string'"
    )
    assert refused(
        admin_client.post(create, json={"service": "svc", "expiration": None, "metadata": []})
    ) == ("[] is not of type 'object'")
    created = admin_client.post(create, json={"service": "walkers", "expiration": None})
    assert created.status_code == 200
    kid = created.json()["kid"]
    key = f"/api/v1/superuser/keys/{kid}"
    before = admin_client.get(key).json()
    assert refused(admin_client.put(key, json={"name": 5})) == "5 is not of type 'string'"
    assert refused(admin_client.put(key, json={"metadata": "x"})) == ("'x' is not of type 'object'")
    assert refused(admin_client.put(key, json={"expiration": "soon"})) == (
        "'soon' is not of type 'number'"
    )
    approve = f"/api/v1/superuser/approvedkeys/{kid}"
    assert refused(admin_client.post(approve, json={"notes": 5})) == "5 is not of type 'string'"
    assert admin_client.get(key).json() == before


@pytest.fixture(scope="module")
def tagged(server: LiveServer, owner: TestUser) -> str:
    org = create_organization(server, owner)
    repo = make_repository(server, org, "tagged", public=False)
    token = token_for(server, (owner.username, owner.password), pull_push(repo))
    with v2_client(server, token) as client:
        assert push_image(client, repo, make_image(), "latest").status_code == 201
    return repo


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"expiration": "soon"}, "'soon' is not of type 'number', 'null'"),
        ({"manifest_digest": 5}, "5 is not of type 'string', 'null'"),
        ({"immutable": "yes"}, "'yes' is not of type 'boolean'"),
        ("latest", "'latest' is not of type 'object'"),
    ],
)
def test_tag_bodies(owner_client, tagged, body, message) -> None:
    before = owner_client.get(f"/api/v1/repository/{tagged}/tag/").json()
    response = owner_client.put(f"/api/v1/repository/{tagged}/tag/latest", json=body)
    assert refused(response) == message
    assert owner_client.get(f"/api/v1/repository/{tagged}/tag/").json() == before


def test_tag_restore_body_and_query_values(owner_client, tagged) -> None:
    restore = f"/api/v1/repository/{tagged}/tag/latest/restore"
    assert refused(owner_client.post(restore, json={"manifest_digest": 5})) == (
        "5 is not of type 'string'"
    )
    listing = owner_client.get(f"/api/v1/repository/{tagged}/tag/", params={"limit": "many"})
    assert listing.status_code == 400
    assert listing.json() == {
        "message": {"limit": "Limit to the number of results to return per page. Max 100."}
    }
    robots = owner_client.get("/api/v1/user/robots", params={"limit": "all"})
    assert robots.status_code == 400
    assert robots.json() == {"message": {"limit": "If specified, the number of robots to return."}}


def _mirror_body(robot: str, **changes) -> dict:
    body = {
        "external_reference": "registry.example.com/library/app",
        "sync_interval": 3600,
        "sync_start_date": "2030-01-01T00:00:00Z",
        "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["*"]},
        "robot_username": robot,
    }
    body.update(changes)
    return body


def test_mirror_checks_in_quay_order_and_shapes(server, owner, owner_client) -> None:
    repo = make_repository(server, owner.username, "mirrored", public=False)
    create_robot(server, owner.username, "mirror", {repo: Role.read})
    robot = f"{owner.username}+mirror"
    url = f"/api/v1/repository/{repo}/mirror"
    scheme = "https://registry.example.com/library/app"

    bad_date = owner_client.post(
        url, json=_mirror_body(robot, external_reference=scheme, sync_start_date="2030-01-01")
    )
    assert bad_date.status_code == 400
    assert bad_date.json() == {"detail": "Incorrect DateTime format for sync_start_date."}
    empty_rule = {"rule_kind": "tag_glob_csv", "rule_value": []}
    bad_rule = owner_client.post(
        url, json=_mirror_body(robot, external_reference=scheme, root_rule=empty_rule)
    )
    assert refused(bad_rule) == (
        "validation failed: rule_value for TAG_GLOB_CSV must be a list with at least one rule"
    )
    assert refused(owner_client.post(url, json=_mirror_body(robot, external_reference=scheme))) == (
        "External registry reference must not include a URL scheme"
    )
    spaced = _mirror_body(robot, external_reference="registry.example.com/library/my app")
    assert refused(owner_client.post(url, json=spaced)) == (
        "External registry reference must not include whitespace"
    )
    assert refused(owner_client.post(url, json=_mirror_body(robot, sync_interval="daily"))) == (
        "'daily' is not of type 'integer'"
    )
    assert refused(
        owner_client.post(url, json=_mirror_body(robot, external_registry_username=5))
    ) == ("5 is not of type 'string', 'null'")
    assert refused(
        owner_client.post(url, json=_mirror_body(robot, external_registry_config=None))
    ) == ("None is not of type 'object'")
    assert refused(owner_client.post(url, json=_mirror_body(robot, sync_status="SYNCING"))) == (
        "Additional properties are not allowed ('sync_status' was unexpected)"
    )
    assert refused(
        owner_client.post(url, json=_mirror_body(robot, skopeo_timeout_interval=60))
    ) == ("60 is less than the minimum of 300")
    unknown_robot = owner_client.post(url, json=_mirror_body(f"{owner.username}+nobody"))
    assert unknown_robot.status_code == 400
    assert unknown_robot.json() == {"message": "Could not find robot with specified username"}
    assert owner_client.get(url).status_code == 404

    # What Quay accepts: no skopeo_timeout_interval, unknown keys inside nested objects.
    accepted = _mirror_body(
        robot,
        root_rule={"rule_kind": "tag_glob_csv", "rule_value": ["v1*"], "note": "kept out"},
        external_registry_config={"verify_tls": True, "client_cert": "none"},
    )
    created = owner_client.post(url, json=accepted)
    assert created.status_code == 201, created.text
    shown = owner_client.get(url).json()
    assert shown["skopeo_timeout_interval"] == 300
    assert shown["root_rule"] == {"rule_kind": "tag_glob_csv", "rule_value": ["v1*"]}
    assert shown["external_registry_config"] == {"verify_tls": True, "client_cert": "none"}

    moved = owner_client.put(url, json={"external_reference": scheme, "sync_start_date": "soon"})
    assert moved.status_code == 400
    assert moved.json() == {"detail": "Incorrect DateTime format for sync_start_date."}
    assert refused(owner_client.put(url, json={"external_reference": scheme})) == (
        "External registry reference must not include a URL scheme"
    )
    assert refused(owner_client.put(url, json={"is_enabled": None})) == (
        "None is not of type 'boolean'"
    )
    assert owner_client.get(url).json() == shown
