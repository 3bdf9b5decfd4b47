"""Repository permissions for users, robots and teams, and what they let callers do."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from cargohold.db.models.accounts import Team, TeamMember, TeamRole, User
from cargohold.db.models.audit import LogEntry
from tests.support.accounts import (
    ALL_SCOPES,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.content import add_manifest, make_repository, tag_manifest
from tests.support.repos import Cast, create_robot


def audit(server, kind: str) -> dict:
    with server.db() as session:
        row = session.scalars(
            select(LogEntry).where(LogEntry.kind == kind).order_by(LogEntry.id.desc())
        ).first()
    entry = json.loads(row.metadata_json)
    entry.pop("request_id", None)  # every entry's; not what these tests look at
    return entry


def add_team(server, org: str, name: str, members: list[str], role=TeamRole.member) -> None:
    with server.db() as session:
        org_id = session.scalar(select(User.id).where(User.username == org))
        team = Team(organization_id=org_id, name=name, role=role)
        session.add(team)
        session.flush()
        for member in members:
            user_id = session.scalar(select(User.id).where(User.username == member))
            session.add(TeamMember(team_id=team.id, user_id=user_id))


def test_user_permissions_lifecycle(cast: Cast) -> None:
    owner = cast.owner.username
    path = make_repository(cast.server, owner)
    base = f"/api/v1/repository/{path}/permissions/user/"
    client = cast.clients["owner"]
    listed = client.get(base).json()["permissions"]
    assert list(listed) == [owner]
    entry = listed[owner]
    assert set(entry) == {"role", "name", "is_robot", "avatar"}
    assert entry["role"] == "admin" and entry["is_robot"] is False
    assert set(entry["avatar"]) == {"name", "hash", "color", "kind"}
    assert entry["avatar"]["kind"] == "user" and entry["avatar"]["name"] == owner

    reader = cast.users["reader"].username
    tags_url = f"/api/v1/repository/{path}/tag/"
    assert cast.clients["reader"].get(tags_url).status_code == 403
    put = client.put(base + reader, json={"role": "read"})
    assert put.status_code == 200
    assert put.json()["role"] == "read" and put.json()["name"] == reader
    assert audit(cast.server, "change_repo_permission") == {
        "username": reader,
        "repo": path.split("/")[1],
        "namespace": owner,
        "role": "read",
        "oauth_token_id": audit(cast.server, "change_repo_permission")["oauth_token_id"],
    }
    assert cast.clients["reader"].get(tags_url).status_code == 200
    assert client.get(base + reader).json()["role"] == "read"
    assert client.get(base + reader + "/transitive").json() == {"permissions": [{"role": "read"}]}
    digest = add_manifest(cast.server, path)
    tag_manifest(cast.server, path, "v1", digest)
    move = {"manifest_digest": digest}
    assert cast.clients["reader"].put(f"{tags_url}v2", json=move).status_code == 403
    client.put(base + reader, json={"role": "write"})
    assert cast.clients["reader"].put(f"{tags_url}v2", json=move).status_code == 201
    assert cast.clients["reader"].get(base).status_code == 403
    client.put(base + reader, json={"role": "admin"})
    assert cast.clients["reader"].get(base).status_code == 200
    assert client.delete(base + reader).status_code == 204
    assert audit(cast.server, "delete_repo_permission")["username"] == reader
    assert reader not in client.get(base).json()["permissions"]
    assert cast.clients["reader"].get(tags_url).status_code == 403
    gone = client.get(base + reader)
    assert gone.status_code == 400
    assert gone.json() == {"message": "User does not have permission for repo."}
    assert client.get(base + reader + "/transitive").status_code == 404


def test_user_permission_refusals(cast: Cast) -> None:
    owner = cast.owner.username
    path = make_repository(cast.server, owner)
    base = f"/api/v1/repository/{path}/permissions/user/"
    client = cast.clients["owner"]
    self_grant = client.put(base + owner, json={"role": "read"})
    assert self_grant.status_code == 400
    assert self_grant.json()["detail"] == "Namespace owner must always be admin."
    assert client.delete(base + owner).json()["detail"] == "Namespace owner must always be admin."
    unknown = client.put(base + "nosuchuser", json={"role": "read"})
    assert unknown.json()["detail"] == "Invalid username: nosuchuser"
    assert client.delete(base + "nosuchuser").json()["detail"] == (
        "User does not have permission for repo."
    )
    assert client.get(base + "nosuchuser/transitive").status_code == 404
    foreign_robot, _ = create_robot(cast.server, cast.users["stranger"].username)
    refused = client.put(base + foreign_robot, json={"role": "read"})
    assert refused.status_code == 400
    assert refused.json()["detail"] == f"Cannot add robot {foreign_robot} under namespace {owner}"
    own_robot, _ = create_robot(cast.server, owner)
    robot = client.put(base + own_robot, json={"role": "write"}).json()
    assert robot["is_robot"] is True and robot["avatar"]["kind"] == "robot"
    assert client.put(base + own_robot, json={"role": "owner"}).status_code == 400
    assert client.put(base + own_robot, json={}).status_code == 400
    for caller, status in (("stranger", 403), ("reader", 403), ("anonymous", 401)):
        assert cast.clients[caller].get(base).status_code == status
        assert cast.clients[caller].get(base + own_robot).status_code == status
    missing = f"/api/v1/repository/{owner}/nothere/permissions/user/"
    assert client.get(missing).status_code == 404
    assert cast.clients["stranger"].get(missing).status_code == 403
    assert client.get(missing + cast.users["reader"].username + "/transitive").status_code == 404
    team_on_user_repo = client.put(
        f"/api/v1/repository/{path}/permissions/team/owners", json={"role": "read"}
    )
    assert team_on_user_repo.status_code == 400


@pytest.fixture(scope="module")
def org_setup(cast: Cast) -> dict:
    org = create_organization(cast.server, cast.owner)
    path = make_repository(cast.server, org)
    add_team(cast.server, org, "readers", [cast.users["reader"].username])
    add_team(cast.server, org, "builders", [cast.users["writer"].username])
    add_team(cast.server, org, "admins", [cast.users["admin"].username], role=TeamRole.admin)
    return {"org": org, "path": path}


def test_team_permissions_on_org_repository(cast: Cast, org_setup: dict) -> None:
    path = org_setup["path"]
    base = f"/api/v1/repository/{path}/permissions/team/"
    client = cast.clients["owner"]
    reader = cast.clients["reader"]
    assert reader.get(f"/api/v1/repository/{path}").status_code == 403
    # Org admins are admins of every org repository without a grant.
    assert cast.clients["admin"].get(base).json() == {"permissions": {}}
    put = client.put(base + "readers", json={"role": "read"})
    assert put.status_code == 200
    body = put.json()
    assert body["role"] == "read" and body["name"] == "readers"
    assert body["avatar"]["kind"] == "team" and body["avatar"]["name"] == "readers"
    assert audit(cast.server, "change_repo_permission") == {
        "team": "readers",
        "repo": path.split("/")[1],
        "role": "read",
        "oauth_token_id": audit(cast.server, "change_repo_permission")["oauth_token_id"],
    }
    assert reader.get(f"/api/v1/repository/{path}").status_code == 200
    assert client.get(base + "readers").json() == {"role": "read"}
    client.put(base + "builders", json={"role": "write"})
    client.put(base + "builders", json={"role": "admin"})
    listed = client.get(base).json()["permissions"]
    assert {name: view["role"] for name, view in listed.items()} == {
        "readers": "read",
        "builders": "admin",
    }
    transitive = client.get(
        f"/api/v1/repository/{path}/permissions/user/{cast.users['reader'].username}/transitive"
    )
    assert transitive.json() == {"permissions": [{"role": "read"}]}
    assert client.delete(base + "builders").status_code == 204
    assert audit(cast.server, "delete_repo_permission")["team"] == "builders"
    again = client.delete(base + "builders")
    assert again.status_code == 400
    assert again.json()["detail"] == "Team does not have permission for repo."
    assert client.get(base + "builders").json() == {
        "message": "Team does not have permission for repo."
    }
    nope = client.put(base + "ghosts", json={"role": "read"})
    assert nope.json()["detail"] == f"No team ghosts in organization {org_setup['org']}"
    assert cast.clients["writer"].get(base).status_code == 403


def test_org_member_flag(cast: Cast, org_setup: dict) -> None:
    path = org_setup["path"]
    base = f"/api/v1/repository/{path}/permissions/user/"
    client = cast.clients["owner"]
    outsider = cast.users["stranger"].username
    member = cast.users["writer"].username
    client.put(base + outsider, json={"role": "read"})
    client.put(base + member, json={"role": "read"})
    robot, _ = create_robot(cast.server, org_setup["org"])
    client.put(base + robot, json={"role": "read"})
    listed = client.get(base).json()["permissions"]
    assert listed[outsider]["is_org_member"] is False
    assert listed[member]["is_org_member"] is True
    assert listed[robot]["is_org_member"] is True
    assert client.get(base + outsider).json()["is_org_member"] is False


def test_global_readonly_superuser_reads_but_never_writes(server_factory) -> None:
    live = server_factory({"GLOBAL_READONLY_SUPER_USERS": ["auditor"]})
    owner = create_user(live)
    create_user(live, "auditor")
    path = make_repository(live, owner.username)
    with bearer_client(live, issue_token(live, "auditor", ALL_SCOPES)) as client:
        assert client.get(f"/api/v1/repository/{path}/permissions/user/").status_code == 200
        assert client.get(f"/api/v1/repository/{path}/tag/").status_code == 200
        body = client.get(f"/api/v1/repository/{path}").json()
        assert body["can_admin"] is True and body["can_write"] is False
        put = client.put(
            f"/api/v1/repository/{path}/permissions/user/{owner.username}", json={"role": "read"}
        )
        assert put.status_code == 403
        assert (
            client.post(
                f"/api/v1/repository/{path}/changevisibility", json={"visibility": "public"}
            ).status_code
            == 403
        )
        listed = client.get(f"/api/v1/repository?namespace={owner.username}").json()
        assert [r["name"] for r in listed["repositories"]] == [path.split("/")[1]]
