"""Robot accounts: /api/v1/user/robots and /api/v1/organization/{org}/robots."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from cargohold.auth.credentials import CredentialsError, verify_robot
from cargohold.auth.secrets import hash_token
from cargohold.db.models.accounts import RobotAccountToken, User
from tests.support.accounts import ALL_SCOPES, bearer_client, issue_token
from tests.support.audit import log_entries
from tests.support.server import LiveServer
from tests.support.sessions import csrf_client
from tests.support.teams import (
    add_to_team,
    create_repository,
    create_team,
    grant_user,
    org_world,
    passwordless_user,
)

TOKEN_RE = re.compile(r"^[A-Z0-9]{64}$")
NOT_FOUND = {"message": "Could not find robot with specified username"}


@pytest.fixture
def person(server: LiveServer):
    return passwordless_user(server)


@pytest.fixture
def client(server: LiveServer, person):
    with bearer_client(server, issue_token(server, person.username, ALL_SCOPES)) as client:
        yield client


def test_user_robot_lifecycle(server, person, client) -> None:
    response = client.put(
        "/api/v1/user/robots/builder",
        json={"description": "CI pushes", "unstructured_metadata": {"team": "ci"}},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == f"{person.username}+builder"
    assert created["description"] == "CI pushes"
    assert created["unstructured_metadata"] == {"team": "ci"}
    assert TOKEN_RE.match(created["token"])
    assert created["created"].endswith("-0000")
    assert created["last_accessed"] is None

    fetched = client.get("/api/v1/user/robots/builder").json()
    assert fetched == created

    listed = client.get("/api/v1/user/robots").json()["robots"]
    assert [robot["name"] for robot in listed] == [created["name"]]
    assert listed[0]["token"] == created["token"]
    assert "unstructured_metadata" not in listed[0]
    assert "token" not in client.get("/api/v1/user/robots?token=false").json()["robots"][0]

    regenerated = client.post("/api/v1/user/robots/builder/regenerate")
    assert regenerated.status_code == 200
    new_token = regenerated.json()["token"]
    assert TOKEN_RE.match(new_token) and new_token != created["token"]
    assert "unstructured_metadata" not in regenerated.json()
    assert client.get("/api/v1/user/robots/builder").json()["token"] == new_token

    assert client.delete("/api/v1/user/robots/builder").status_code == 204
    assert client.get("/api/v1/user/robots").json() == {"robots": []}
    assert client.get("/api/v1/user/robots/builder").json() == NOT_FOUND

    assert log_entries(server, person.username, "create_robot") == [
        {"robot": "builder", "description": "CI pushes", "unstructured_metadata": {"team": "ci"}}
    ]
    assert log_entries(server, person.username, "regenerate_robot_token") == [{"robot": "builder"}]
    assert log_entries(server, person.username, "delete_robot") == [{"robot": "builder"}]


def test_robot_token_is_hashed_encrypted_and_usable(server, person, client) -> None:
    token = client.put("/api/v1/user/robots/pusher").json()["token"]
    name = f"{person.username}+pusher"
    with server.db() as session:
        robot = session.scalar(select(User).where(User.username == name))
        record = session.scalar(
            select(RobotAccountToken).where(RobotAccountToken.robot_id == robot.id)
        )
        assert record.token_hash == hash_token(token)
        assert token not in record.token_encrypted
        assert verify_robot(session, server.settings, name, token).user.username == name
    new_token = client.post("/api/v1/user/robots/pusher/regenerate").json()["token"]
    with server.db() as session:
        assert verify_robot(session, server.settings, name, new_token).user.username == name
        with pytest.raises(CredentialsError):
            verify_robot(session, server.settings, name, token)


def test_create_robot_defaults_and_duplicates(person, client) -> None:
    created = client.put("/api/v1/user/robots/plain")
    assert created.status_code == 201
    assert created.json()["description"] == ""
    assert created.json()["unstructured_metadata"] == {}
    again = client.put("/api/v1/user/robots/plain", json={"description": "other"})
    assert again.status_code == 400
    assert again.json()["error_message"] == f"Existing robot with name: {person.username}+plain"
    assert client.get("/api/v1/user/robots/plain").json()["description"] == ""


@pytest.mark.parametrize(
    ("name", "body", "detail"),
    [
        (
            "Z7PD",
            {},
            "The name for the robot 'Z7PD' is invalid: Namespace must match expression "
            "^([a-z0-9]+(?:[._-][a-z0-9]+)*)$",
        ),
        ("longdesc", {"description": "x" * 256}, f"'{'x' * 256}' is too long"),
        ("badmeta", {"unstructured_metadata": [1]}, "[1] is not of type 'object'"),
        ("baddesc", {"description": 5}, "5 is not of type 'string'"),
    ],
)
def test_create_robot_bad_input(client, name, body, detail) -> None:
    response = client.put(f"/api/v1/user/robots/{name}", json=body)
    assert response.status_code == 400
    assert response.json()["error_type"] == "invalid_request"
    assert response.json()["detail"] == detail
    assert client.get("/api/v1/user/robots").json() == {"robots": []}


def test_missing_robot_is_400_message(client) -> None:
    assert client.get("/api/v1/user/robots/ghost").json() == NOT_FOUND
    for response in (
        client.get("/api/v1/user/robots/ghost"),
        client.delete("/api/v1/user/robots/ghost"),
        client.post("/api/v1/user/robots/ghost/regenerate"),
        client.get("/api/v1/user/robots/ghost/permissions"),
    ):
        assert response.status_code == 400
        assert response.json() == NOT_FOUND


def test_user_robots_permissions_and_limit(server, person, client) -> None:
    client.put("/api/v1/user/robots/first")
    client.put("/api/v1/user/robots/second")
    create_repository(server, person.username, "app")
    grant_user(server, person.username, "app", f"{person.username}+first", "write")
    listed = client.get("/api/v1/user/robots?permissions=true&token=false").json()["robots"]
    by_name = {robot["name"].split("+")[1]: robot for robot in listed}
    assert by_name["first"]["repositories"] == ["app"]
    assert by_name["first"]["teams"] == []
    assert by_name["second"]["repositories"] == []
    assert "token" not in by_name["first"]
    assert len(client.get("/api/v1/user/robots?limit=1").json()["robots"]) == 1
    assert client.get("/api/v1/user/robots?limit=abc").status_code == 400
    permissions = client.get("/api/v1/user/robots/first/permissions").json()
    assert permissions == {
        "permissions": [{"repository": {"name": "app", "is_public": False}, "role": "write"}]
    }


def test_user_robots_access_rules(server, person) -> None:
    with csrf_client(server) as anonymous:
        assert anonymous.get("/api/v1/user/robots").status_code == 401
        assert anonymous.put("/api/v1/user/robots/x").status_code == 401
    with csrf_client(server) as no_csrf:
        no_csrf.headers.pop("X-CSRF-Token")
        assert no_csrf.put("/api/v1/user/robots/x").status_code == 403
    with bearer_client(server, issue_token(server, person.username, "user:read")) as reader:
        response = reader.get("/api/v1/user/robots")
        assert response.status_code == 403
        assert response.json()["error_type"] == "insufficient_scope"
        assert reader.put("/api/v1/user/robots/x").status_code == 403


def test_other_users_robots_are_separate(server, client) -> None:
    client.put("/api/v1/user/robots/mine")
    other = passwordless_user(server)
    with bearer_client(server, issue_token(server, other.username, ALL_SCOPES)) as other_client:
        assert other_client.get("/api/v1/user/robots").json() == {"robots": []}
        assert other_client.get("/api/v1/user/robots/mine").json() == NOT_FOUND


# Organization robots


def test_org_robot_lifecycle_by_admin(server) -> None:
    with org_world(server) as world:
        owner = world.client("owner")
        base = f"/api/v1/organization/{world.org}/robots"
        response = owner.put(f"{base}/deployer", json={"description": "deploys"})
        assert response.status_code == 201
        created = response.json()
        assert created["name"] == f"{world.org}+deployer"
        assert owner.get(f"{base}/deployer").json()["token"] == created["token"]
        names = {robot["name"] for robot in owner.get(base).json()["robots"]}
        assert names == {world.robot, created["name"]}
        new = owner.post(f"{base}/deployer/regenerate").json()["token"]
        assert new != created["token"]
        assert owner.delete(f"{base}/deployer").status_code == 204
        assert owner.get(f"{base}/deployer").json() == NOT_FOUND
        assert log_entries(server, world.org, "create_robot") == [
            {"robot": "deployer", "description": "deploys", "unstructured_metadata": {}}
        ]
        assert log_entries(server, world.org, "delete_robot") == [{"robot": "deployer"}]
        duplicate = owner.put(f"{base}/{world.robot.split('+')[1]}")
        assert duplicate.json()["error_message"] == f"Existing robot with name: {world.robot}"


def test_org_robot_list_visibility(server) -> None:
    with org_world(server) as world:
        create_team(server, world.org, "bots", "member")
        add_to_team(server, world.org, "bots", world.robot)
        base = f"/api/v1/organization/{world.org}/robots"
        admin_view = world.client("owner").get(f"{base}?permissions=true").json()["robots"]
        assert admin_view[0]["token"] == world.robot_token
        assert [team["name"] for team in admin_view[0]["teams"]] == ["bots"]
        member_view = world.client("reader").get(f"{base}?permissions=true").json()["robots"]
        assert member_view[0]["name"] == world.robot
        assert "token" not in member_view[0]
        assert "teams" not in member_view[0]
        outsider = world.client("outsider").get(base)
        assert outsider.status_code == 403
        assert world.client("anonymous").get(base).status_code == 401


def test_org_robot_single_needs_admin(server) -> None:
    with org_world(server) as world:
        short = world.robot.split("+")[1]
        base = f"/api/v1/organization/{world.org}/robots/{short}"
        for who in ("reader", "outsider"):
            assert world.client(who).get(base).status_code == 403
            assert world.client(who).put(f"{base}x").status_code == 403
            assert world.client(who).delete(base).status_code == 403
            assert world.client(who).post(f"{base}/regenerate").status_code == 403
        assert world.client("anonymous").get(base).status_code == 401
        with bearer_client(
            server, issue_token(server, world.owner.username, "user:admin repo:admin")
        ) as scoped:
            assert scoped.get(base).status_code == 403
            assert scoped.get(f"/api/v1/organization/{world.org}/robots").status_code == 403
        with bearer_client(server, issue_token(server, world.owner.username, "org:admin")) as org:
            assert org.get(base).json()["token"] == world.robot_token
            assert org.get(f"{base}/permissions").status_code == 403


def test_org_robots_on_user_namespace_and_missing_org(server, person, client) -> None:
    response = client.get(f"/api/v1/organization/{person.username}/robots")
    assert response.status_code == 400
    assert response.json() == {"message": f"Organization does not exist: {person.username}"}
    assert client.get("/api/v1/organization/nosuchorg/robots").status_code == 403
    assert client.put("/api/v1/organization/nosuchorg/robots/bot").status_code == 403


def test_superuser_without_full_access_cannot_manage_org_robots(server, admin) -> None:
    with org_world(server, superuser=admin) as world:
        base = f"/api/v1/organization/{world.org}/robots"
        assert world.client("superuser").get(base).status_code == 403
        assert world.client("superuser").put(f"{base}/intruder").status_code == 403
