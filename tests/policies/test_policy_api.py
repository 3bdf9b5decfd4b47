"""Auto-prune and immutability policy endpoints: shapes, validation, permissions, audit."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.content import make_repository
from tests.support.organizations import log_entries
from tests.support.repos import grant
from tests.support.server import LiveServer
from tests.support.teams import add_to_team, create_team


@pytest.fixture(scope="module")
def owner(server: LiveServer) -> TestUser:
    return create_user(server)


@pytest.fixture(scope="module")
def client(server: LiveServer, owner: TestUser) -> Iterator[httpx.Client]:
    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as made:
        yield made


@pytest.fixture
def org(server: LiveServer, owner: TestUser) -> str:
    return create_organization(server, owner)


def org_path(org: str, kind: str) -> str:
    return f"/api/v1/organization/{org}/{kind}/"


def test_org_autoprune_policy_lifecycle(server: LiveServer, client: httpx.Client, org: str):
    base = org_path(org, "autoprunepolicy")
    assert client.get(base).json() == {"policies": []}
    body = {
        "method": "number_of_tags",
        "value": 5,
        "tagPattern": " ^v ",
        "tagPatternMatches": False,
    }
    created = client.post(base, json=body)
    assert created.status_code == 201
    uuid = created.json()["uuid"]
    expected = {
        "uuid": uuid,
        "method": "number_of_tags",
        "value": 5,
        "tagPattern": "^v",
        "tagPatternMatches": False,
    }
    assert client.get(base).json() == {"policies": [expected]}
    assert client.get(base + uuid).json() == expected
    entry = log_entries(server, "create_namespace_autoprune_policy", org)[-1]
    assert entry["method"] == "number_of_tags" and entry["namespace"] == org

    duplicate = client.post(base, json=body)
    assert duplicate.status_code == 400
    assert "duplicate policies are not permitted" in duplicate.json()["detail"]

    changed = client.put(base + uuid, json={"method": "creation_date", "value": "2w"})
    assert changed.status_code == 204 and changed.content == b""
    view = client.get(base + uuid).json()
    assert view["method"] == "creation_date" and view["value"] == "2w"
    assert view["tagPattern"] is None and view["tagPatternMatches"] is True
    assert log_entries(server, "update_namespace_autoprune_policy", org)[-1]["value"] == "2w"

    deleted = client.delete(base + uuid)
    assert deleted.status_code == 200 and deleted.json() == {"uuid": uuid}
    assert client.get(base + uuid).status_code == 404
    assert client.delete(base + uuid).status_code == 404
    assert log_entries(server, "delete_namespace_autoprune_policy", org)[-1]["policy_uuid"] == uuid


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"method": "oldest_first", "value": 3}, "Invalid method provided"),
        ({"method": "number_of_tags", "value": -2}, "Invalid value given for method type"),
        ({"method": "number_of_tags", "value": 0}, "Invalid value given for method type"),
        ({"method": "number_of_tags", "value": "3"}, "Invalid value given for method type"),
        ({"method": "number_of_tags", "value": True}, "Invalid value given for method type"),
        ({"method": "creation_date", "value": "5 days"}, "Invalid value given for method type"),
        ({"method": "creation_date", "value": 7}, "Invalid value given for method type"),
        ({"method": "creation_date", "value": "-1d"}, "Invalid value given for method type"),
        ({"method": "number_of_tags", "value": 2, "tagPattern": "(["}, "Invalid regex pattern"),
        ({"method": "number_of_tags", "value": 2, "tagPattern": ""}, "tag_pattern cannot be empty"),
        ({"method": "number_of_tags", "value": 2, "tagPattern": 7}, "tag_pattern must be string"),
        (
            {"method": "number_of_tags", "value": 2, "tagPatternMatches": "no"},
            "tag_pattern_matches must be bool",
        ),
        ({"method": "number_of_tags"}, "'value' is a required property"),
        ({"value": 3}, "'method' is a required property"),
    ],
)
def test_malformed_autoprune_policies_are_refused(
    client: httpx.Client, org: str, body: dict, message: str
) -> None:
    for base in (org_path(org, "autoprunepolicy"), "/api/v1/user/autoprunepolicy/"):
        response = client.post(base, json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error_type"] == "invalid_request"
        assert message in response.json()["detail"]
        assert client.get(base).json() == {"policies": []}


def test_update_with_a_malformed_policy_keeps_the_stored_one(client: httpx.Client, org: str):
    base = org_path(org, "autoprunepolicy")
    uuid = client.post(base, json={"method": "number_of_tags", "value": 4}).json()["uuid"]
    refused = client.put(base + uuid, json={"method": "number_of_tags", "value": -4})
    assert refused.status_code == 400
    assert client.get(base + uuid).json()["value"] == 4
    missing = client.put(base + "no-such-policy", json={"method": "number_of_tags", "value": 4})
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tagPattern": ""}, "tag_pattern is required and must be a non-empty string"),
        ({"tagPattern": "   "}, "tag_pattern is required and must be a non-empty string"),
        ({"tagPattern": "v(1"}, "Invalid regex pattern"),
        ({"tagPattern": "v" * 257}, "tag_pattern must be 256 characters or less"),
        ({"tagPattern": "^v", "tagPatternMatches": 1}, "tag_pattern_matches must be a boolean"),
        ({"tagPatternMatches": True}, "'tagPattern' is a required property"),
    ],
)
def test_malformed_immutability_policies_are_refused(
    server: LiveServer, owner: TestUser, client: httpx.Client, org: str, body: dict, message: str
) -> None:
    repo = make_repository(server, org)
    for base in (
        org_path(org, "immutabilitypolicy"),
        f"/api/v1/repository/{repo}/immutabilitypolicy/",
    ):
        response = client.post(base, json=body)
        assert response.status_code == 400, response.text
        assert message in response.json()["detail"]
        assert client.get(base).json() == {"policies": []}


def test_repository_and_user_policies(server: LiveServer, owner: TestUser, client: httpx.Client):
    repo = make_repository(server, owner.username)
    for base, kind in (
        (f"/api/v1/repository/{repo}/autoprunepolicy/", "create_repository_autoprune_policy"),
        ("/api/v1/user/autoprunepolicy/", "create_namespace_autoprune_policy"),
    ):
        created = client.post(base, json={"method": "creation_date", "value": "3d"})
        assert created.status_code == 201
        uuid = created.json()["uuid"]
        assert [p["uuid"] for p in client.get(base).json()["policies"]] == [uuid]
        assert log_entries(server, kind, owner.username)[-1]["value"] == "3d"
        assert client.delete(base + uuid).json() == {"uuid": uuid}
    immutability = f"/api/v1/repository/{repo}/immutabilitypolicy/"
    created = client.post(immutability, json={"tagPattern": "^stable$"})
    assert created.status_code == 201
    uuid = created.json()["uuid"]
    view = client.get(immutability + uuid).json()
    assert view == {"uuid": uuid, "tagPattern": "^stable$", "tagPatternMatches": True}
    entry = log_entries(server, "create_immutability_policy", owner.username)[-1]
    assert entry["repo"] == repo.split("/")[1] and entry["tag_pattern"] == "^stable$"
    same = client.post(immutability, json={"tagPattern": "^stable$", "tagPatternMatches": False})
    assert same.status_code == 400
    assert same.json()["detail"] == "A policy with the same tag_pattern already exists"


def test_policies_need_admin_rights(server: LiveServer, owner: TestUser, client: httpx.Client):
    org = create_organization(server, owner)
    repo = make_repository(server, org)
    member = create_user(server)
    create_team(server, org, "writers", "member")
    add_to_team(server, org, "writers", member.username)
    grant(server, repo, member.username, "write")
    stranger = create_user(server)
    org_uuid = client.post(
        org_path(org, "autoprunepolicy"), json={"method": "number_of_tags", "value": 2}
    ).json()["uuid"]
    repo_uuid = client.post(
        f"/api/v1/repository/{repo}/immutabilitypolicy/", json={"tagPattern": "^v"}
    ).json()["uuid"]
    paths = [
        (org_path(org, "autoprunepolicy"), org_uuid),
        (org_path(org, "immutabilitypolicy"), None),
        (f"/api/v1/repository/{repo}/autoprunepolicy/", None),
        (f"/api/v1/repository/{repo}/immutabilitypolicy/", repo_uuid),
    ]
    body = {"method": "number_of_tags", "value": 1, "tagPattern": "^x"}
    for user in (member, stranger):
        with bearer_client(server, issue_token(server, user.username, ALL_SCOPES)) as other:
            for base, uuid in paths:
                assert other.get(base).status_code == 403
                assert other.post(base, json=body).status_code == 403
                if uuid is not None:
                    assert other.get(base + uuid).status_code == 403
                    assert other.put(base + uuid, json=body).status_code == 403
                    assert other.delete(base + uuid).status_code == 403
            assert other.get(org_path("no-such-org", "autoprunepolicy")).status_code == 403
    with httpx.Client(base_url=server.url) as anonymous:
        for base, _uuid in paths:
            assert anonymous.get(base).status_code == 401
        assert anonymous.get("/api/v1/user/autoprunepolicy/").status_code == 401
    assert client.get(org_path(org, "autoprunepolicy") + org_uuid).status_code == 200
    assert (
        client.get(f"/api/v1/repository/{repo}/immutabilitypolicy/{repo_uuid}").status_code == 200
    )


def test_a_policy_is_found_only_under_its_owner(
    server: LiveServer, client: httpx.Client, org: str, owner: TestUser
) -> None:
    other_org = create_organization(server, owner)
    uuid = client.post(org_path(other_org, "immutabilitypolicy"), json={"tagPattern": "^v"}).json()[
        "uuid"
    ]
    assert client.get(org_path(org, "immutabilitypolicy") + uuid).status_code == 404
    assert client.delete(org_path(org, "immutabilitypolicy") + uuid).status_code == 404
    assert client.get(org_path(other_org, "immutabilitypolicy") + uuid).status_code == 200


def test_endpoints_are_absent_when_their_feature_is_off(server_factory) -> None:
    live = server_factory({"FEATURE_AUTO_PRUNE": False, "FEATURE_IMMUTABLE_TAGS": False})
    user = create_user(live)
    org = create_organization(live, user)
    with bearer_client(live, issue_token(live, user.username, ALL_SCOPES)) as client:
        assert client.get(org_path(org, "autoprunepolicy")).status_code == 404
        assert client.get(org_path(org, "immutabilitypolicy")).status_code == 404
        response = client.post("/api/v1/user/autoprunepolicy/", json={"method": "x", "value": 1})
        assert response.status_code == 404
