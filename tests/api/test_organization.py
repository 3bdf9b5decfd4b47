"""Organizations: create, view, change, delete, collaborators."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.accounts import DeletedNamespace, TeamMember, User
from cargohold.db.models.registry import Repository, RepositoryPermission, Role
from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
    unique,
)
from tests.support.organizations import log_entries, team_members
from tests.support.server import LiveServer
from tests.support.sessions import cookie_session

CSRF_FAILED = {"error": "CSRF token was invalid or missing."}


def assert_api_error(response: httpx.Response, status: int, error_type: str, detail=None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_type"] == error_type
    assert body["title"] == error_type
    assert body["status"] == status
    assert body["type"].endswith(f"/api/v1/error/{error_type}")
    if detail is not None:
        assert body["detail"] == detail
        assert body["error_message"] == detail


def org_count(server: LiveServer, name: str) -> int:
    with server.db() as session:
        return len(session.scalars(select(User.id).where(User.username == name)).all())


@pytest.fixture
def org(server: LiveServer, user: TestUser) -> str:
    return create_organization(server, user)


@pytest.fixture
def stranger(server: LiveServer) -> httpx.Client:
    other = create_user(server)
    with bearer_client(server, issue_token(server, other.username, ALL_SCOPES)) as client:
        yield client


# --- create ---------------------------------------------------------------------------


def test_create_makes_org_with_owners_team_and_logs(
    server: LiveServer, user: TestUser, user_client
) -> None:
    name = unique("acme")
    response = user_client.post(
        "/api/v1/organization/", json={"name": name, "email": "a@b.example"}
    )
    assert response.status_code == 201
    assert response.json() == "Created"
    assert team_members(server, name, "owners") == [user.username]
    assert log_entries(server, "org_create", name) == [{"email": "a@b.example", "namespace": name}]
    view = user_client.get(f"/api/v1/organization/{name}").json()
    assert view["is_admin"] is True and view["is_member"] is True
    assert view["email"] == "a@b.example"
    assert view["ordered_teams"] == ["owners"]
    assert view["teams"]["owners"]["role"] == "admin"
    assert view["teams"]["owners"]["member_count"] == 1
    assert view["tag_expiration_s"] == 1209600


def test_create_accepts_slashless_path_and_contact_email(server: LiveServer, user_client) -> None:
    name = unique("org")
    response = user_client.post(
        "/api/v1/organization",
        json={"name": name, "email": "ignored@x.example", "contact_email": "c@x.example"},
    )
    assert response.status_code == 201
    assert user_client.get(f"/api/v1/organization/{name}").json()["email"] == "c@x.example"


def test_orgs_may_share_an_email_without_an_email_at_all(server: LiveServer, user_client) -> None:
    first, second = unique("org"), unique("org")
    for name in (first, second):
        assert (
            user_client.post(
                "/api/v1/organization/", json={"name": name, "email": "s@x.example"}
            ).status_code
            == 201
        )
    third = unique("org")
    assert user_client.post("/api/v1/organization/", json={"name": third}).status_code == 201
    assert user_client.get(f"/api/v1/organization/{third}").json()["email"] == ""


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "'name' is a required property"),
        ({"name": "Bad_Name"}, None),
        ({"name": "x"}, None),
        ({"name": 5}, None),
        ({"name": "ok-name-{}", "email": "not-an-email"}, "Invalid email address"),
    ],
)
def test_create_rejects_bad_bodies_without_writing(
    server: LiveServer, user_client, body: dict, detail
) -> None:
    if isinstance(body.get("name"), str) and "{}" in body["name"]:
        body = {**body, "name": body["name"].format(unique(""))}
    response = user_client.post("/api/v1/organization/", json=body)
    assert_api_error(response, 400, "invalid_request", detail)
    if isinstance(body.get("name"), str):
        assert org_count(server, body["name"]) == 0


def test_create_reports_quay_name_messages(user_client) -> None:
    response = user_client.post("/api/v1/organization/", json={"name": "Bad_Name"})
    assert response.json()["detail"].startswith(
        "Invalid namespace Bad_Name: Namespace must match expression"
    )
    response = user_client.post("/api/v1/organization/", json={"name": "x"})
    assert response.json()["detail"] == (
        "Invalid namespace x: Namespace must be between 2 and 255 characters in length"
    )


def test_create_rejects_malformed_json(user_client) -> None:
    response = user_client.post(
        "/api/v1/organization/", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "message" in response.json()


def test_create_rejects_names_of_users_and_orgs(
    server: LiveServer, user: TestUser, org: str, user_client
) -> None:
    for taken in (user.username, org):
        response = user_client.post("/api/v1/organization/", json={"name": taken})
        assert_api_error(
            response, 400, "invalid_request", "A user or organization with this name already exists"
        )


def test_create_rejects_a_users_email(server: LiveServer, user: TestUser, user_client) -> None:
    name = unique("org")
    response = user_client.post("/api/v1/organization/", json={"name": name, "email": user.email})
    assert_api_error(response, 400, "invalid_request", f"Email has already been used: {user.email}")
    assert org_count(server, name) == 0


def test_create_needs_user_admin_scope(server: LiveServer, user: TestUser) -> None:
    token = issue_token(server, user.username, "repo:read user:read org:admin")
    with bearer_client(server, token) as client:
        name = unique("org")
        response = client.post("/api/v1/organization/", json={"name": name})
    assert_api_error(response, 403, "insufficient_scope", "Unauthorized")
    assert org_count(server, name) == 0


def test_create_by_anonymous_is_a_csrf_failure(anon_client) -> None:
    response = anon_client.post("/api/v1/organization/", json={"name": unique("org")})
    assert response.status_code == 403
    assert response.json() == CSRF_FAILED


def test_create_with_session_needs_csrf(server: LiveServer, user: TestUser) -> None:
    client, csrf = cookie_session(server, user.username)
    with client:
        name = unique("org")
        refused = client.post("/api/v1/organization/", json={"name": name})
        assert refused.status_code == 403 and refused.json() == CSRF_FAILED
        assert org_count(server, name) == 0
        wrong = client.post(
            "/api/v1/organization/", json={"name": name}, headers={"X-CSRF-Token": "nope"}
        )
        assert wrong.status_code == 403
        created = client.post(
            "/api/v1/organization/", json={"name": name}, headers={"X-CSRF-Token": csrf}
        )
        assert created.status_code == 201


# --- view -----------------------------------------------------------------------------


def test_get_as_outsider_and_anonymous_hides_details(
    server: LiveServer, org: str, stranger, anon_client
) -> None:
    for client in (stranger, anon_client):
        view = client.get(f"/api/v1/organization/{org}").json()
        assert view["name"] == org
        assert view["is_admin"] is False and view["is_member"] is False
        assert view["email"] == ""
        assert view["avatar"]["kind"] == "user"
        assert "teams" not in view and "tag_expiration_s" not in view


def test_get_unknown_org_or_a_user_is_404(user: TestUser, user_client, anon_client) -> None:
    assert_api_error(
        anon_client.get("/api/v1/organization/nosuchorg"), 404, "not_found", "Not Found"
    )
    assert_api_error(user_client.get(f"/api/v1/organization/{user.username}"), 404, "not_found")


def test_get_as_plain_member_shows_teams_but_not_billing(
    server: LiveServer, org: str, user: TestUser
) -> None:
    member = create_user(server)
    with server.db() as session:
        from cargohold.db.models.accounts import Team, TeamRole

        org_id = session.scalar(select(User.id).where(User.username == org))
        team = Team(organization_id=org_id, name="readers", role=TeamRole.member)
        session.add(team)
        session.flush()
        session.add(TeamMember(team_id=team.id, user_id=member.id))
    with bearer_client(server, issue_token(server, member.username, ALL_SCOPES)) as client:
        view = client.get(f"/api/v1/organization/{org}").json()
    assert view["is_member"] is True and view["is_admin"] is False
    assert view["ordered_teams"] == ["owners", "readers"]
    assert view["teams"]["readers"]["can_view"] is True
    assert view["teams"]["owners"]["can_view"] is False
    assert "invoice_email" not in view


# --- change ---------------------------------------------------------------------------


def test_change_details_applies_and_logs(server: LiveServer, org: str, user_client) -> None:
    response = user_client.put(
        f"/api/v1/organization/{org}",
        json={
            "email": "new@x.example",
            "invoice_email": True,
            "invoice_email_address": "bills@x.example",
            "tag_expiration_s": 0,
            "unknown_key": "ignored",
        },
    )
    assert response.status_code == 200
    view = response.json()
    assert view["email"] == "new@x.example"
    assert view["invoice_email"] is True
    assert view["invoice_email_address"] == "bills@x.example"
    assert view["tag_expiration_s"] == 0
    assert "owners" in view["teams"]
    assert log_entries(server, "org_change_email", org) == [
        {"email": "new@x.example", "old_email": "", "namespace": org}
    ]
    assert log_entries(server, "org_change_tag_expiration", org) == [
        {"tag_expiration": 0, "namespace": org}
    ]
    assert len(log_entries(server, "org_change_invoicing", org)) == 2


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"tag_expiration_s": 100}, 400, {"message": "Invalid tag expiration option"}),
        ({"tag_expiration_s": 10**20}, 400, {"message": "Invalid tag expiration option"}),
        ({"tag_expiration_s": -5}, 400, None),
        ({"tag_expiration_s": "1d"}, 400, None),
        ({"contact_email": "not-a-valid-email"}, 400, None),
        ({"invoice_email": "yes"}, 400, None),
    ],
)
def test_change_rejects_bad_values_and_writes_nothing(
    server: LiveServer, org: str, user_client, body: dict, status: int, message
) -> None:
    response = user_client.put(f"/api/v1/organization/{org}", json=body)
    assert response.status_code == status
    if message is not None:
        assert response.json() == message
    else:
        assert response.json()["error_type"] == "invalid_request"
    view = user_client.get(f"/api/v1/organization/{org}").json()
    assert view["tag_expiration_s"] == 1209600 and view["invoice_email"] is False


def test_change_validates_before_writing_anything(org: str, user_client) -> None:
    response = user_client.put(
        f"/api/v1/organization/{org}", json={"invoice_email": True, "tag_expiration_s": 7}
    )
    assert response.status_code == 400
    assert user_client.get(f"/api/v1/organization/{org}").json()["invoice_email"] is False


def test_change_permission_rules(
    server: LiveServer, org: str, user: TestUser, stranger, anon_client
) -> None:
    assert_api_error(
        stranger.put(f"/api/v1/organization/{org}", json={}), 403, "insufficient_scope"
    )
    assert_api_error(
        stranger.put("/api/v1/organization/nosuchorg", json={}), 403, "insufficient_scope"
    )
    assert anon_client.put(f"/api/v1/organization/{org}", json={}).json() == CSRF_FAILED
    token = issue_token(server, user.username, "repo:admin user:admin")
    with bearer_client(server, token) as client:
        response = client.put(f"/api/v1/organization/{org}", json={"tag_expiration_s": 0})
    assert_api_error(response, 403, "insufficient_scope")


def test_change_unknown_org_for_full_access_superuser_is_404(server_factory) -> None:
    live = server_factory({"FEATURE_SUPERUSERS_FULL_ACCESS": True})
    create_user(live, "admin")
    owner = create_user(live)
    org = create_organization(live, owner)
    with bearer_client(live, issue_token(live, "admin", ALL_SCOPES)) as client:
        assert client.put("/api/v1/organization/nosuchorg", json={}).status_code == 404
        changed = client.put(f"/api/v1/organization/{org}", json={"tag_expiration_s": 86400})
        assert changed.status_code == 200
        assert changed.json()["tag_expiration_s"] == 86400
        assert changed.json()["is_admin"] is True


def test_change_with_session_needs_csrf(server: LiveServer, org: str, user: TestUser) -> None:
    client, csrf = cookie_session(server, user.username)
    with client:
        assert client.put(f"/api/v1/organization/{org}", json={}).json() == CSRF_FAILED
        ok = client.put(
            f"/api/v1/organization/{org}",
            json={"tag_expiration_s": 0},
            headers={"X-CSRF-Token": csrf},
        )
        assert ok.status_code == 200


# --- delete ---------------------------------------------------------------------------


def test_delete_makes_org_unreachable_and_reserves_name(
    server: LiveServer, org: str, user: TestUser, user_client
) -> None:
    app = user_client.post(f"/api/v1/organization/{org}/applications", json={"name": "a"}).json()
    response = user_client.delete(f"/api/v1/organization/{org}")
    assert response.status_code == 204 and response.content == b""
    assert user_client.get(f"/api/v1/organization/{org}").status_code == 404
    assert user_client.get(f"/api/v1/organization/{org}/applications").status_code == 403
    again = user_client.post("/api/v1/organization/", json={"name": org})
    assert_api_error(again, 400, "invalid_request", "Username is not available")
    assert log_entries(server, "org_delete")[-1] == {"namespace": org}
    with server.db() as session:
        marker = session.scalar(
            select(DeletedNamespace).where(DeletedNamespace.original_username == org)
        )
        assert marker is not None
        row = session.get(User, marker.namespace_id)
        assert row.deleted is True and row.username != org
        assert session.scalars(select(TeamMember).where(TeamMember.user_id == user.id)).all() == []
        from cargohold.db.models.accounts import OAuthApplication

        assert (
            session.scalar(
                select(OAuthApplication).where(OAuthApplication.client_id == app["client_id"])
            )
            is None
        )


def test_delete_permission_and_fresh_login(
    server: LiveServer, org: str, user: TestUser, stranger, anon_client
) -> None:
    assert_api_error(stranger.delete(f"/api/v1/organization/{org}"), 403, "insufficient_scope")
    assert anon_client.delete(f"/api/v1/organization/{org}").json() == CSRF_FAILED
    stale, csrf = cookie_session(server, user.username, login_age_s=3600)
    with stale:
        response = stale.delete(f"/api/v1/organization/{org}", headers={"X-CSRF-Token": csrf})
    assert_api_error(response, 401, "fresh_login_required", "Requires fresh login")
    fresh, csrf = cookie_session(server, user.username)
    with fresh:
        assert fresh.delete(f"/api/v1/organization/{org}").json() == CSRF_FAILED
        assert (
            fresh.delete(f"/api/v1/organization/{org}", headers={"X-CSRF-Token": csrf}).status_code
            == 204
        )
    assert org_count(server, org) == 0


def test_delete_needs_org_admin_scope(server: LiveServer, org: str, user: TestUser) -> None:
    with bearer_client(server, issue_token(server, user.username, "user:admin repo:admin")) as c:
        assert_api_error(c.delete(f"/api/v1/organization/{org}"), 403, "insufficient_scope")
    assert org_count(server, org) == 1


def test_delete_unknown_org_is_403_for_users(stranger) -> None:
    assert_api_error(stranger.delete("/api/v1/organization/nosuchorg"), 403, "insufficient_scope")


# --- collaborators --------------------------------------------------------------------


def test_collaborators_lists_outside_users_with_direct_permissions(
    server: LiveServer, org: str, user: TestUser, user_client
) -> None:
    outsider = create_user(server)
    with server.db() as session:
        org_id = session.scalar(select(User.id).where(User.username == org))
        repo = Repository(namespace_user_id=org_id, name="app")
        session.add(repo)
        session.flush()
        session.add(
            RepositoryPermission(repository_id=repo.id, user_id=outsider.id, role=Role.read)
        )
        session.add(RepositoryPermission(repository_id=repo.id, user_id=user.id, role=Role.admin))
    response = user_client.get(f"/api/v1/organization/{org}/collaborators")
    assert response.status_code == 200
    collaborators = response.json()["collaborators"]
    assert [c["name"] for c in collaborators] == [outsider.username]
    assert collaborators[0]["repositories"] == ["app"]
    assert collaborators[0]["kind"] == "user"


def test_collaborators_permission_rules(
    server: LiveServer, org: str, user: TestUser, stranger, anon_client
) -> None:
    assert_api_error(
        anon_client.get(f"/api/v1/organization/{org}/collaborators"), 401, "invalid_token"
    )
    assert_api_error(
        stranger.get(f"/api/v1/organization/{org}/collaborators"), 403, "insufficient_scope"
    )
    with bearer_client(server, issue_token(server, user.username, "repo:admin")) as client:
        assert_api_error(
            client.get(f"/api/v1/organization/{org}/collaborators"), 403, "insufficient_scope"
        )


def test_collaborators_unknown_org(server_factory) -> None:
    live = server_factory({"GLOBAL_READONLY_SUPER_USERS": ["auditor"]})
    create_user(live, "auditor")
    owner = create_user(live)
    org = create_organization(live, owner)
    with bearer_client(live, issue_token(live, "auditor", ALL_SCOPES)) as client:
        assert client.get("/api/v1/organization/nosuchorg/collaborators").status_code == 404
        assert client.get(f"/api/v1/organization/{org}/collaborators").json() == {
            "collaborators": []
        }
        assert client.put(f"/api/v1/organization/{org}", json={}).status_code == 403
