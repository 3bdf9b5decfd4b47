"""Default permissions: the API, and their effect on repositories created afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import aliased

from cargohold.db.models.accounts import Team, User
from cargohold.db.models.registry import Repository, RepositoryPermission
from cargohold.domain.avatars import avatar
from tests.support.teams import (
    OrgWorld,
    add_to_team,
    audit_entries,
    create_robot,
    create_team,
    org_world,
)

CSRF = {"error": "CSRF token was invalid or missing."}


@pytest.fixture
def world(server, admin) -> Iterator[OrgWorld]:
    with org_world(server, superuser=admin) as built:
        yield built


def _grants(server, org: str, repository: str) -> dict[str, str]:
    """Who holds which role on the repository: usernames, and teams as `team:<name>`."""
    namespace = aliased(User)
    with server.db() as session:
        rows = session.execute(
            select(User.username, Team.name, RepositoryPermission.role)
            .select_from(RepositoryPermission)
            .join(Repository, Repository.id == RepositoryPermission.repository_id)
            .join(namespace, namespace.id == Repository.namespace_user_id)
            .join(User, User.id == RepositoryPermission.user_id, isouter=True)
            .join(Team, Team.id == RepositoryPermission.team_id, isouter=True)
            .where(namespace.username == org, Repository.name == repository)
        ).all()
    return {(user or f"team:{team}"): role.value for user, team, role in rows}


def _user_view(server, name: str, email: str | None, *, robot: bool, member: bool) -> dict:
    return {
        "name": name,
        "is_robot": robot,
        "kind": "user",
        "is_org_member": member,
        "avatar": avatar(server.settings, name, email, "robot" if robot else "user"),
    }


def test_prototype_crud(server, world: OrgWorld) -> None:
    owner = world.client("owner")
    path = f"/api/v1/organization/{world.org}/prototypes"
    assert owner.get(path).json() == {"prototypes": []}

    team_rule = owner.post(
        path, json={"role": "write", "delegate": {"name": "readers", "kind": "team"}}
    )
    assert team_rule.status_code == 200
    team_view = team_rule.json()
    assert team_view == {
        "activating_user": None,
        "delegate": {
            "name": "readers",
            "kind": "team",
            "avatar": avatar(server.settings, "readers", "readers", "team"),
        },
        "role": "write",
        "id": team_view["id"],
    }
    user_rule = owner.post(
        path,
        json={
            "role": "read",
            "delegate": {"name": world.outsider.username, "kind": "user"},
            "activating_user": {"name": world.reader.username},
        },
    ).json()
    assert user_rule["delegate"] == _user_view(
        server, world.outsider.username, world.outsider.email, robot=False, member=False
    )
    assert user_rule["activating_user"] == _user_view(
        server, world.reader.username, world.reader.email, robot=False, member=True
    )
    robot_rule = owner.post(
        path, json={"role": "admin", "delegate": {"name": world.robot, "kind": "user"}}
    ).json()
    assert robot_rule["delegate"] == _user_view(server, world.robot, None, robot=True, member=True)
    assert owner.get(path).json() == {"prototypes": [team_view, user_rule, robot_rule]}

    changed = owner.put(f"{path}/{team_view['id']}", json={"role": "admin"})
    assert changed.status_code == 200
    assert changed.json() == {**team_view, "role": "admin"}
    deleted = owner.delete(f"{path}/{robot_rule['id']}")
    assert deleted.status_code == 204
    assert [p["id"] for p in owner.get(path).json()["prototypes"]] == [
        team_view["id"],
        user_rule["id"],
    ]

    assert audit_entries(server, world.org, "create_prototype_permission")[0] == {
        "prototypeid": team_view["id"],
        "username": world.owner.username,
        "activating_username": None,
        "role": "write",
        "delegate_team": "readers",
    }
    assert audit_entries(server, world.org, "modify_prototype_permission") == [
        {
            "prototypeid": team_view["id"],
            "username": world.owner.username,
            "activating_username": None,
            "role": "admin",
            "delegate_team": "readers",
            "original_role": "write",
        }
    ]
    assert audit_entries(server, world.org, "delete_prototype_permission")[0]["delegate_user"] == (
        world.robot
    )
    for response in (
        owner.put(f"{path}/not-an-id", json={"role": "read"}),
        owner.delete(f"{path}/not-an-id"),
    ):
        assert response.status_code == 404
        assert response.json()["title"] == "not_found"


def test_prototype_bad_input(server, world: OrgWorld) -> None:
    owner = world.client("owner")
    path = f"/api/v1/organization/{world.org}/prototypes"

    def detail(body) -> tuple[int, object]:
        response = owner.post(path, json=body)
        data = response.json()
        return response.status_code, data.get("detail", data.get("message"))

    team = {"name": "readers", "kind": "team"}
    assert detail({"delegate": team}) == (400, "'role' is a required property")
    assert detail({"role": "owner", "delegate": team}) == (
        400,
        "'owner' is not one of ['read', 'write', 'admin']",
    )
    assert detail({"role": "read"}) == (400, "'delegate' is a required property")
    assert detail({"role": "read", "delegate": team, "activating_user": {"name": "ghost"}}) == (
        400,
        "Unknown activating user",
    )
    assert detail({"role": "read", "delegate": {"name": "ghost", "kind": "user"}}) == (
        400,
        "Missing delegate user or team",
    )
    foreign_robot, _ = create_robot(server, world.outsider.username)
    assert detail({"role": "read", "delegate": {"name": foreign_robot, "kind": "user"}}) == (
        400,
        "Missing delegate user or team",
    )
    missing_team = owner.post(
        path, json={"role": "read", "delegate": {"name": "ghosts", "kind": "team"}}
    )
    assert missing_team.status_code == 400
    assert missing_team.json() == {
        "message": f"('Team does not exist: %s/%s', '{world.org}', 'ghosts')"
    }
    assert owner.get(path).json() == {"prototypes": []}


def test_prototypes_need_org_admin(world: OrgWorld) -> None:
    path = f"/api/v1/organization/{world.org}/prototypes"
    body = {"role": "read", "delegate": {"name": "readers", "kind": "team"}}
    for who in ("reader", "outsider", "superuser"):
        for response in (world.client(who).get(path), world.client(who).post(path, json=body)):
            assert response.status_code == 403
            assert response.json()["title"] == "insufficient_scope"
    for who in ("anonymous", "robot"):
        assert world.client(who).get(path).status_code == 401
        assert world.client(who).post(path, json=body).json() == CSRF
    assert world.client("owner").get("/api/v1/organization/noorg/prototypes").status_code == 403


def test_new_repositories_get_default_permissions(server, world: OrgWorld) -> None:
    owner = world.client("owner")
    path = f"/api/v1/organization/{world.org}/prototypes"
    for body in (
        {"role": "write", "delegate": {"name": "readers", "kind": "team"}},
        {"role": "admin", "delegate": {"name": world.robot, "kind": "user"}},
        # Only for repositories the reader creates.
        {
            "role": "read",
            "delegate": {"name": world.outsider.username, "kind": "user"},
            "activating_user": {"name": world.reader.username},
        },
    ):
        assert owner.post(path, json=body).status_code == 200
    created = owner.post(
        "/api/v1/repository",
        json={
            "namespace": world.org,
            "repository": "fresh",
            "visibility": "private",
            "description": "",
        },
    )
    assert created.status_code == 201, created.text
    grants = _grants(server, world.org, "fresh")
    assert grants["team:readers"] == "write"
    assert grants[world.robot] == "admin"
    assert world.outsider.username not in grants
    # The team's new grant is visible through the team permissions endpoint.
    assert owner.get(f"/api/v1/organization/{world.org}/team/readers/permissions").json() == {
        "permissions": [{"repository": {"name": "fresh", "is_public": False}, "role": "write"}]
    }


def test_rules_for_the_creating_user_win_over_general_rules(server, world: OrgWorld) -> None:
    create_team(server, world.org, "creators", "creator")
    add_to_team(server, world.org, "creators", world.reader.username)
    owner = world.client("owner")
    path = f"/api/v1/organization/{world.org}/prototypes"
    general = {"role": "read", "delegate": {"name": "readers", "kind": "team"}}
    specific = {**general, "role": "admin", "activating_user": {"name": world.reader.username}}
    assert owner.post(path, json=general).status_code == 200
    assert owner.post(path, json=specific).status_code == 200

    def create(client, name: str) -> None:
        response = client.post(
            "/api/v1/repository",
            json={
                "namespace": world.org,
                "repository": name,
                "visibility": "private",
                "description": "",
            },
        )
        assert response.status_code == 201, response.text

    create(world.client("reader"), "by-reader")
    create(owner, "by-owner")
    assert _grants(server, world.org, "by-reader") == {
        world.reader.username: "admin",
        "team:readers": "admin",
    }
    assert _grants(server, world.org, "by-owner") == {
        world.owner.username: "admin",
        "team:readers": "read",
    }
