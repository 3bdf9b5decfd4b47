"""Teams on a server without mailing: members are added directly, never invited."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cargohold.domain.avatars import avatar
from tests.support.accounts import ALL_SCOPES, bearer_client, issue_token
from tests.support.teams import (
    OrgWorld,
    add_to_team,
    audit_entries,
    create_repository,
    create_robot,
    create_team,
    grant_team,
    grant_user,
    org_world,
    passwordless_user,
    team_member_names,
)

CSRF = {"error": "CSRF token was invalid or missing."}


@pytest.fixture
def world(server, admin) -> Iterator[OrgWorld]:
    with org_world(server, superuser=admin) as built:
        yield built


def _api_error(response: httpx.Response, status: int, error_type: str, detail: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["title"] == body["error_type"] == error_type
    assert body["detail"] == body["error_message"] == detail
    assert body["status"] == status
    assert body["type"].endswith(f"/api/v1/error/{error_type}")


def _forbidden(response: httpx.Response) -> None:
    _api_error(response, 403, "insufficient_scope", "Unauthorized")


def _unauthenticated(response: httpx.Response) -> None:
    _api_error(response, 401, "invalid_token", "Requires authentication")


def _team_avatar(server, name: str) -> dict:
    return avatar(server.settings, name, name, "team")


def test_put_creates_then_updates_a_team(server, world: OrgWorld) -> None:
    owner = world.client("owner")
    path = f"/api/v1/organization/{world.org}/team/deployers"
    created = owner.put(path, json={"role": "creator", "description": "CI robots", "name": "x"})
    assert created.status_code == 200
    assert created.json() == {
        "name": "deployers",
        "description": "CI robots",
        "can_view": True,
        "role": "creator",
        "avatar": _team_avatar(server, "deployers"),
        "new_team": True,
    }
    assert audit_entries(server, world.org, "org_create_team") == [{"team": "deployers"}]

    unchanged = owner.put(path, json={"role": "creator", "description": "CI robots"})
    assert unchanged.json()["new_team"] is False
    assert audit_entries(server, world.org, "org_set_team_description") == []

    updated = owner.put(path, json={"role": "admin", "description": "release"})
    assert updated.status_code == 200
    assert updated.json()["role"] == "admin"
    assert updated.json()["description"] == "release"
    assert audit_entries(server, world.org, "org_set_team_description") == [
        {"team": "deployers", "description": "release"}
    ]
    assert audit_entries(server, world.org, "org_set_team_role") == [
        {"team": "deployers", "role": "admin"}
    ]
    # A role-only update keeps the description.
    assert owner.put(path, json={"role": "member"}).json()["description"] == "release"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "Bad_Name",
            "Invalid team name Bad_Name: Namespace must match expression "
            "^([a-z0-9]+(?:[._-][a-z0-9]+)*)$",
        ),
        ("has space", None),
        ("-lead", None),
        ("f", "Invalid team name f: Team must be between 2 and 255 characters in length"),
        (
            "a" * 256,
            "Invalid team name "
            + "a" * 256
            + ": Team must be between 2 and 255 characters in length",
        ),
    ],
)
def test_invalid_team_names_are_refused(world: OrgWorld, name: str, message: str | None) -> None:
    response = world.client("owner").put(
        f"/api/v1/organization/{world.org}/team/{name}", json={"role": "member"}
    )
    assert response.status_code == 400
    text = response.json()["message"]
    assert text == message if message else text.startswith(f"Invalid team name {name}: Namespace")
    members = world.client("owner").get(f"/api/v1/organization/{world.org}/team/{name}/members")
    assert members.status_code == 404


@pytest.mark.parametrize("name", ["fo", "a" * 255, "a_b", "a-b", "a.b"])
def test_valid_team_names_are_accepted(world: OrgWorld, name: str) -> None:
    response = world.client("owner").put(
        f"/api/v1/organization/{world.org}/team/{name}", json={"role": "member"}
    )
    assert response.status_code == 200
    assert response.json()["name"] == name


def test_team_body_is_validated(world: OrgWorld) -> None:
    owner = world.client("owner")
    path = f"/api/v1/organization/{world.org}/team/newteam"
    _api_error(owner.put(path), 400, "invalid_request", "Missing JSON body")
    _api_error(
        owner.put(path, json={"role": "boss"}),
        400,
        "invalid_request",
        "'boss' is not one of ['member', 'creator', 'admin']",
    )
    _api_error(
        owner.put(path, json={"description": "x"}),
        400,
        "invalid_request",
        "'role' is a required property",
    )
    _api_error(
        owner.put(path, json={"role": "member", "description": 5}),
        400,
        "invalid_request",
        "5 is not of type 'string'",
    )
    assert owner.get(path + "/members").status_code == 404
    assert owner.get(path).status_code == 405


def test_caller_cannot_drop_their_only_admin_team(server, world: OrgWorld) -> None:
    owner = world.client("owner")
    base = f"/api/v1/organization/{world.org}/team"
    demote = owner.put(f"{base}/owners", json={"role": "creator"})
    assert demote.status_code == 400
    assert demote.json() == {
        "message": f"Cannot remove admin from team 'owners' because calling user would no "
        f"longer have admin on org '{world.org}'"
    }
    delete = owner.delete(f"{base}/owners")
    assert delete.status_code == 400
    assert delete.json() == {
        "message": f"Deleting team 'owners' would remove admin ability for user "
        f"'{world.owner.username}' in organization '{world.org}'"
    }
    removal = owner.delete(f"{base}/owners/members/{world.owner.username}")
    assert removal.status_code == 400
    assert removal.json() == {
        "message": "User cannot remove themselves from their only admin team."
    }
    assert team_member_names(server, world.org, "owners") == {world.owner.username}

    # With a second admin team the same calls succeed (Ansible demotes before deleting).
    assert owner.put(f"{base}/admins2", json={"role": "admin"}).status_code == 200
    assert owner.put(f"{base}/admins2/members/{world.owner.username}").status_code == 200
    assert owner.put(f"{base}/owners", json={"role": "member"}).json()["role"] == "member"
    assert owner.delete(f"{base}/owners").status_code == 204
    assert audit_entries(server, world.org, "org_delete_team") == [{"team": "owners"}]


def test_one_admin_may_remove_another(server, world: OrgWorld) -> None:
    second = passwordless_user(server)
    add_to_team(server, world.org, "owners", second.username)
    response = world.client("owner").delete(
        f"/api/v1/organization/{world.org}/team/owners/members/{second.username}"
    )
    assert response.status_code == 204
    assert response.content == b""
    assert team_member_names(server, world.org, "owners") == {world.owner.username}
    assert audit_entries(server, world.org, "org_remove_team_member") == [
        {"member": second.username, "team": "owners"}
    ]


def test_delete_team_removes_it_with_its_grants(server, world: OrgWorld) -> None:
    owner = world.client("owner")
    create_repository(server, world.org, "app")
    grant_team(server, world.org, "app", "readers", "read")
    unknown = owner.delete(f"/api/v1/organization/{world.org}/team/nope")
    assert unknown.status_code == 400
    assert unknown.json() == {"message": f"Team 'nope' is not a team in org '{world.org}'"}
    assert owner.delete(f"/api/v1/organization/{world.org}/team/readers").status_code == 204
    assert owner.get(f"/api/v1/organization/{world.org}/team/readers/members").status_code == 404
    assert (
        owner.put(f"/api/v1/organization/{world.org}/team/readers", json={"role": "member"}).json()[
            "new_team"
        ]
        is True
    )
    assert owner.get(f"/api/v1/organization/{world.org}/team/readers/permissions").json() == {
        "permissions": []
    }


def test_team_members_listing(server, world: OrgWorld) -> None:
    members_path = f"/api/v1/organization/{world.org}/team/readers/members"
    add_to_team(server, world.org, "readers", world.robot)
    expected = {
        "name": "readers",
        "members": [
            {
                "name": world.reader.username,
                "kind": "user",
                "is_robot": False,
                "avatar": avatar(
                    server.settings, world.reader.username, world.reader.email, "user"
                ),
                "invited": False,
            },
            {
                "name": world.robot,
                "kind": "user",
                "is_robot": True,
                "avatar": avatar(server.settings, world.robot, None, "robot"),
                "invited": False,
            },
        ],
    }
    assert world.client("owner").get(members_path).json() == {**expected, "can_edit": True}
    as_reader = world.client("reader").get(members_path, params={"includePending": "true"})
    assert as_reader.json() == {**expected, "can_edit": False}
    _forbidden(world.client("reader").get(f"/api/v1/organization/{world.org}/team/owners/members"))
    _forbidden(world.client("outsider").get(members_path))
    _forbidden(world.client("superuser").get(members_path))
    _unauthenticated(world.client("anonymous").get(members_path))
    _unauthenticated(world.client("robot").get(members_path))
    _api_error(
        world.client("owner").get(f"/api/v1/organization/{world.org}/team/nope/members"),
        404,
        "not_found",
        "Not Found",
    )
    # Without rights nobody learns whether a team or an organization exists.
    _forbidden(world.client("outsider").get(f"/api/v1/organization/{world.org}/team/nope/members"))
    _forbidden(world.client("outsider").get("/api/v1/organization/noorg/team/nope/members"))


def test_tokens_without_org_scopes_cannot_list_their_team(server, world: OrgWorld) -> None:
    token = issue_token(server, world.reader.username, "repo:read user:read")
    with bearer_client(server, token) as client:
        _forbidden(client.get(f"/api/v1/organization/{world.org}/team/readers/members"))


def test_add_members_directly_when_invites_are_off(server, world: OrgWorld) -> None:
    owner = world.client("owner")
    path = f"/api/v1/organization/{world.org}/team/readers/members"
    added = owner.put(f"{path}/{world.outsider.username}", json={})
    assert added.status_code == 200
    assert added.json() == {
        "name": world.outsider.username,
        "kind": "user",
        "is_robot": False,
        "avatar": avatar(server.settings, world.outsider.username, world.outsider.email, "user"),
        "invited": False,
    }
    robot = owner.put(f"{path}/{world.robot}")
    assert robot.status_code == 200
    assert robot.json()["is_robot"] is True
    assert robot.json()["avatar"]["kind"] == "robot"
    assert team_member_names(server, world.org, "readers") == {
        world.reader.username,
        world.outsider.username,
        world.robot,
    }
    assert audit_entries(server, world.org, "org_add_team_member") == [
        {"member": world.outsider.username, "team": "readers"},
        {"member": world.robot, "team": "readers"},
    ]
    again = owner.put(f"{path}/{world.reader.username}")
    assert again.status_code == 400
    assert again.json() == {
        "message": f"User {world.reader.username} is already a member of team readers"
    }
    _api_error(owner.put(f"{path}/nobody"), 400, "invalid_request", "Unknown user")
    _api_error(owner.put(f"{path}/{world.org}"), 400, "invalid_request", "Unknown user")
    _api_error(
        owner.put(f"/api/v1/organization/{world.org}/team/nope/members/{world.reader.username}"),
        404,
        "not_found",
        "Not Found",
    )
    foreign_robot, _ = create_robot(server, world.outsider.username)
    refused = owner.put(f"{path}/{foreign_robot}")
    assert refused.status_code == 400
    assert refused.json() == {
        "message": "Cannot add the specified robot to this team, as it is not a member of the "
        "organization"
    }
    assert foreign_robot not in team_member_names(server, world.org, "readers")


def test_member_writes_need_org_admin(server, world: OrgWorld) -> None:
    path = f"/api/v1/organization/{world.org}/team/readers/members/{world.outsider.username}"
    for who in ("reader", "outsider", "superuser"):
        _forbidden(world.client(who).put(path))
        _forbidden(world.client(who).delete(path))
        _forbidden(
            world.client(who).put(
                f"/api/v1/organization/{world.org}/team/readers", json={"role": "admin"}
            )
        )
        _forbidden(world.client(who).delete(f"/api/v1/organization/{world.org}/team/readers"))
    for who in ("anonymous", "robot"):
        response = world.client(who).put(path)
        assert response.status_code == 403
        assert response.json() == CSRF
        assert (
            world.client(who).delete(f"/api/v1/organization/{world.org}/team/readers").json()
            == CSRF
        )
    _forbidden(world.client("owner").put("/api/v1/organization/noorg/team/x/members/y"))
    assert team_member_names(server, world.org, "readers") == {world.reader.username}


def test_delete_members(server, world: OrgWorld) -> None:
    owner = world.client("owner")
    path = f"/api/v1/organization/{world.org}/team/readers/members"
    missing = owner.delete(f"{path}/{world.outsider.username}")
    assert missing.status_code == 400
    assert missing.json() == {
        "message": f"User {world.outsider.username} does not belong to team readers"
    }
    _api_error(owner.delete(f"{path}/nobody"), 404, "not_found", "Not Found")
    assert owner.delete(f"{path}/{world.reader.username}").status_code == 204
    assert owner.get(path).json()["members"] == []


def test_team_permissions_list_repository_roles(server, world: OrgWorld) -> None:
    create_repository(server, world.org, "zeta", public=True)
    create_repository(server, world.org, "alpha")
    create_repository(server, world.org, "unrelated")
    grant_team(server, world.org, "zeta", "readers", "write")
    grant_team(server, world.org, "alpha", "readers", "read")
    path = f"/api/v1/organization/{world.org}/team/readers/permissions"
    response = world.client("owner").get(path)
    assert response.status_code == 200
    assert response.json() == {
        "permissions": [
            {"repository": {"name": "alpha", "is_public": False}, "role": "read"},
            {"repository": {"name": "zeta", "is_public": True}, "role": "write"},
        ]
    }
    for who in ("reader", "outsider", "superuser"):
        _forbidden(world.client(who).get(path))
    for who in ("anonymous", "robot"):
        _unauthenticated(world.client(who).get(path))
    _api_error(
        world.client("owner").get(f"/api/v1/organization/{world.org}/team/nope/permissions"),
        404,
        "not_found",
        "Not Found",
    )


def test_invite_routes_do_not_exist_without_mailing(world: OrgWorld) -> None:
    owner = world.client("owner")
    for response in (
        owner.put(f"/api/v1/organization/{world.org}/team/readers/invite/a@example.com"),
        owner.delete(f"/api/v1/organization/{world.org}/team/readers/invite/a@example.com"),
        owner.put("/api/v1/teaminvite/somecode"),
        owner.delete("/api/v1/teaminvite/somecode"),
    ):
        assert response.status_code == 404
        assert "title" not in response.json()


def test_organization_members_reflect_teams(server, world: OrgWorld) -> None:
    create_team(server, world.org, "builders", "creator")
    add_to_team(server, world.org, "builders", world.reader.username)
    add_to_team(server, world.org, "builders", world.robot)
    create_repository(server, world.org, "direct")
    grant_user(server, world.org, "direct", world.reader.username, "write")
    owner = world.client("owner")
    listing = owner.get(f"/api/v1/organization/{world.org}/members")
    assert listing.status_code == 200
    members = listing.json()["members"]
    team = lambda name: {"name": name, "avatar": _team_avatar(server, name)}  # noqa: E731
    assert members == [
        {
            "name": world.owner.username,
            "kind": "user",
            "avatar": avatar(server.settings, world.owner.username, world.owner.email, "user"),
            "teams": [team("owners")],
            "repositories": [],
        },
        {
            "name": world.reader.username,
            "kind": "user",
            "avatar": avatar(server.settings, world.reader.username, world.reader.email, "user"),
            "teams": [team("readers"), team("builders")],
            "repositories": ["direct"],
        },
    ]
    for member in members:
        single = owner.get(f"/api/v1/organization/{world.org}/members/{member['name']}")
        assert single.json() == member
    robot = owner.get(f"/api/v1/organization/{world.org}/members/{world.robot}").json()
    assert robot["kind"] == "robot"
    assert robot["teams"] == [team("builders")]
    _api_error(
        owner.get(f"/api/v1/organization/{world.org}/members/{world.outsider.username}"),
        404,
        "not_found",
        "Not Found",
    )
    _api_error(
        owner.get(f"/api/v1/organization/{world.org}/members/nobody"), 404, "not_found", "Not Found"
    )
    for who in ("reader", "outsider", "superuser"):
        _forbidden(world.client(who).get(f"/api/v1/organization/{world.org}/members"))
    _unauthenticated(world.client("anonymous").get(f"/api/v1/organization/{world.org}/members"))
    _forbidden(owner.get("/api/v1/organization/noorg/members"))


def test_remove_organization_member(server, world: OrgWorld) -> None:
    owner = world.client("owner")
    create_repository(server, world.org, "direct")
    grant_user(server, world.org, "direct", world.reader.username, "read")
    only_admin = owner.delete(f"/api/v1/organization/{world.org}/members/{world.owner.username}")
    assert only_admin.status_code == 400
    assert only_admin.json() == {
        "message": "Cannot remove user as they are the only organization admin"
    }
    assert (
        owner.delete(
            f"/api/v1/organization/{world.org}/members/{world.reader.username}"
        ).status_code
        == 204
    )
    assert team_member_names(server, world.org, "readers") == set()
    members = owner.get(f"/api/v1/organization/{world.org}/members").json()["members"]
    assert [m["name"] for m in members] == [world.owner.username]
    _api_error(
        owner.delete(f"/api/v1/organization/{world.org}/members/{world.robot}"),
        404,
        "not_found",
        "Not Found",
    )
    _forbidden(
        world.client("reader").delete(
            f"/api/v1/organization/{world.org}/members/{world.owner.username}"
        )
    )


def test_organization_roles_decide_repository_rights(server, world: OrgWorld) -> None:
    create_team(server, world.org, "makers", "creator")
    maker = passwordless_user(server)
    add_to_team(server, world.org, "makers", maker.username)
    second_admin = passwordless_user(server)
    add_to_team(server, world.org, "owners", second_admin.username)
    body = {"namespace": world.org, "visibility": "private", "description": ""}

    refused = world.client("reader").post("/api/v1/repository", json={**body, "repository": "r1"})
    assert refused.status_code == 403
    with bearer_client(server, issue_token(server, maker.username, ALL_SCOPES)) as client:
        made = client.post("/api/v1/repository", json={**body, "repository": "made"})
        assert made.status_code == 201
        # Creating is not administering: the creator team has no rights on others' repositories.
        assert (
            world.client("owner")
            .post("/api/v1/repository", json={**body, "repository": "owned"})
            .status_code
            == 201
        )
        assert (
            client.get(f"/api/v1/repository/{world.org}/owned/permissions/user/").status_code == 403
        )
    # Any member of an admin team administers every repository of the organization.
    with bearer_client(server, issue_token(server, second_admin.username, ALL_SCOPES)) as client:
        listing = client.get(f"/api/v1/repository/{world.org}/made/permissions/user/")
        assert listing.status_code == 200
        assert maker.username in listing.json()["permissions"]
    # Team grants show up in the repository's team permissions and in the team's view.
    owner = world.client("owner")
    granted = owner.put(
        f"/api/v1/repository/{world.org}/owned/permissions/team/readers", json={"role": "write"}
    )
    assert granted.status_code == 200
    assert owner.get(f"/api/v1/organization/{world.org}/team/readers/permissions").json() == {
        "permissions": [{"repository": {"name": "owned", "is_public": False}, "role": "write"}]
    }
    reader_view = world.client("reader").get(f"/api/v1/repository/{world.org}/owned")
    assert reader_view.status_code == 200
    assert reader_view.json()["can_write"] is True
    assert reader_view.json()["can_admin"] is False
    assert world.client("outsider").get(f"/api/v1/repository/{world.org}/owned").status_code == 403


def test_concurrent_creates_and_adds_never_fail(server, world: OrgWorld) -> None:
    from concurrent.futures import ThreadPoolExecutor

    token = issue_token(server, world.owner.username, ALL_SCOPES)
    team_path = f"/api/v1/organization/{world.org}/team/racers"
    member_path = f"{team_path}/members/{world.outsider.username}"

    def put(path: str, body: dict | None) -> int:
        with bearer_client(server, token) as client:
            return client.put(path, json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda _: put(team_path, {"role": "member"}), range(8)))
        added = list(pool.map(lambda _: put(member_path, None), range(8)))
    assert created == [200] * 8
    assert sorted(added) == [200] + [400] * 7
    assert len(audit_entries(server, world.org, "org_create_team")) == 1
    assert team_member_names(server, world.org, "racers") == {world.outsider.username}
