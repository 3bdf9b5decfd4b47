"""OAuth applications of an organization."""

from __future__ import annotations

import httpx
import pytest

from tests.api.test_organization import CSRF_FAILED, assert_api_error
from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.organizations import log_entries
from tests.support.server import LiveServer
from tests.support.sessions import cookie_session

NEW_APP = {
    "name": "deployer",
    "redirect_uri": "https://app.example/cb",
    "application_uri": "https://app.example",
    "description": "ships things",
    "avatar_email": "app@app.example",
}


@pytest.fixture
def org(server: LiveServer, user: TestUser) -> str:
    return create_organization(server, user)


@pytest.fixture
def app(org: str, user_client) -> dict:
    response = user_client.post(f"/api/v1/organization/{org}/applications", json=NEW_APP)
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def stranger(server: LiveServer) -> httpx.Client:
    other = create_user(server)
    with bearer_client(server, issue_token(server, other.username, ALL_SCOPES)) as client:
        yield client


def test_create_returns_app_with_secret_and_logs(server: LiveServer, org: str, app: dict) -> None:
    assert len(app["client_id"]) == 20
    assert all(c.isdigit() or "A" <= c <= "Z" for c in app["client_id"])
    assert len(app["client_secret"]) == 40
    assert {k: app[k] for k in NEW_APP} == NEW_APP
    entry = log_entries(server, "create_application", org)[-1]
    assert entry["application_name"] == "deployer" and entry["client_id"] == app["client_id"]


def test_secret_is_encrypted_at_rest(server: LiveServer, app: dict) -> None:
    from sqlalchemy import select

    from cargohold.db.models.accounts import OAuthApplication

    with server.db() as session:
        stored = session.scalar(
            select(OAuthApplication.client_secret_encrypted).where(
                OAuthApplication.client_id == app["client_id"]
            )
        )
    assert app["client_secret"] not in stored


def test_list_get_update_reset_delete(server: LiveServer, org: str, app: dict, user_client) -> None:
    base = f"/api/v1/organization/{org}/applications"
    listed = user_client.get(base).json()["applications"]
    assert [a["client_id"] for a in listed] == [app["client_id"]]
    assert user_client.get(f"{base}/{app['client_id']}").json() == app
    updated = user_client.put(
        f"{base}/{app['client_id']}",
        json={"name": "renamed", "redirect_uri": "https://b.example/cb", "application_uri": ""},
    )
    assert updated.status_code == 200
    assert updated.json()["name"] == "renamed"
    assert updated.json()["redirect_uri"] == "https://b.example/cb"
    assert updated.json()["description"] == ""
    reset = user_client.post(f"{base}/{app['client_id']}/resetclientsecret")
    assert reset.status_code == 200
    assert reset.json()["client_secret"] != app["client_secret"]
    assert user_client.delete(f"{base}/{app['client_id']}").status_code == 204
    assert_api_error(user_client.get(f"{base}/{app['client_id']}"), 404, "not_found")
    kinds = ["update_application", "reset_application_client_secret", "delete_application"]
    for kind in kinds:
        assert log_entries(server, kind, org)[-1]["client_id"] == app["client_id"]


def test_missing_objects_are_404(org: str, user_client) -> None:
    base = f"/api/v1/organization/{org}/applications"
    assert_api_error(user_client.get(f"{base}/NOSUCHCLIENT"), 404, "not_found")
    assert_api_error(user_client.delete(f"{base}/NOSUCHCLIENT"), 404, "not_found")
    assert_api_error(
        user_client.put(
            f"{base}/NOSUCHCLIENT", json={"name": "a", "redirect_uri": "", "application_uri": ""}
        ),
        404,
        "not_found",
    )
    assert_api_error(user_client.post(f"{base}/NOSUCHCLIENT/resetclientsecret"), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [{}, {"name": 3}, {"redirect_uri": "x"}, {"name": "a", "description": ["x"]}],
)
def test_create_rejects_bad_bodies(org: str, user_client, body: dict) -> None:
    base = f"/api/v1/organization/{org}/applications"
    assert_api_error(user_client.post(base, json=body), 400, "invalid_request")
    assert user_client.get(base).json() == {"applications": []}


def test_update_requires_all_three_fields(org: str, app: dict, user_client) -> None:
    url = f"/api/v1/organization/{org}/applications/{app['client_id']}"
    response = user_client.put(url, json={"name": "x"})
    assert_api_error(response, 400, "invalid_request")
    assert user_client.get(url).json()["name"] == "deployer"


def test_other_users_and_anonymous_are_refused(org: str, app: dict, stranger, anon_client) -> None:
    base = f"/api/v1/organization/{org}/applications"
    one = f"{base}/{app['client_id']}"
    assert_api_error(stranger.get(base), 403, "insufficient_scope")
    assert_api_error(stranger.get(one), 403, "insufficient_scope")
    assert_api_error(stranger.post(base, json=NEW_APP), 403, "insufficient_scope")
    assert_api_error(stranger.delete(one), 403, "insufficient_scope")
    assert_api_error(
        stranger.get("/api/v1/organization/nosuchorg/applications"), 403, "insufficient_scope"
    )
    assert_api_error(anon_client.get(base), 401, "invalid_token")
    assert anon_client.post(base, json=NEW_APP).json() == CSRF_FAILED
    assert anon_client.delete(one).json() == CSRF_FAILED


def test_tokens_without_org_admin_scope_are_refused(
    server: LiveServer, org: str, app: dict, user: TestUser
) -> None:
    with bearer_client(server, issue_token(server, user.username, "repo:admin user:admin")) as c:
        assert_api_error(
            c.get(f"/api/v1/organization/{org}/applications"), 403, "insufficient_scope"
        )
        assert_api_error(
            c.post(f"/api/v1/organization/{org}/applications", json=NEW_APP),
            403,
            "insufficient_scope",
        )


def test_session_writes_need_csrf(server: LiveServer, org: str, user: TestUser) -> None:
    client, csrf = cookie_session(server, user.username)
    base = f"/api/v1/organization/{org}/applications"
    with client:
        assert client.post(base, json=NEW_APP).json() == CSRF_FAILED
        assert client.get(base).json() == {"applications": []}
        made = client.post(base, json=NEW_APP, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 200


def test_readonly_superuser_sees_apps_without_secrets(server_factory) -> None:
    live = server_factory({"GLOBAL_READONLY_SUPER_USERS": ["auditor"]})
    create_user(live, "auditor")
    owner = create_user(live)
    org = create_organization(live, owner)
    with bearer_client(live, issue_token(live, owner.username, ALL_SCOPES)) as client:
        app = client.post(f"/api/v1/organization/{org}/applications", json=NEW_APP).json()
    with bearer_client(live, issue_token(live, "auditor", ALL_SCOPES)) as client:
        listed = client.get(f"/api/v1/organization/{org}/applications").json()["applications"]
        assert listed[0]["client_id"] == app["client_id"]
        assert listed[0]["client_secret"] is None and listed[0]["redirect_uri"] is None
        one = client.get(f"/api/v1/organization/{org}/applications/{app['client_id']}")
        assert one.status_code == 200
        assert (
            client.delete(f"/api/v1/organization/{org}/applications/{app['client_id']}").status_code
            == 403
        )


def test_application_tokens_lifecycle(server: LiveServer, org: str, app: dict, user_client) -> None:
    base = f"/api/v1/organization/{org}/applications/{app['client_id']}/tokens"
    made = user_client.post(
        base, json={"name": " ci ", "scope": "repo:read org:admin", "expiration": 3600}
    )
    assert made.status_code == 201, made.text
    token = made.json()
    assert token["name"] == "ci" and len(token["token"]) == 40
    assert token["scope"] == "org:admin repo:read"
    assert token["expires_at"].endswith("Z") and token["created_by"]
    listed = user_client.get(base).json()["tokens"]
    assert [t["uuid"] for t in listed] == [token["uuid"]]
    assert "token" not in listed[0]
    with bearer_client(server, token["token"]) as minted:
        assert minted.get(f"/api/v1/organization/{org}/applications").status_code == 200
        assert minted.put(f"/api/v1/organization/{org}", json={}).status_code == 200
        assert minted.post("/api/v1/organization/", json={"name": "nope" + org}).status_code == 403
    assert user_client.delete(f"{base}/{token['uuid']}").status_code == 204
    with bearer_client(server, token["token"]) as revoked:
        assert revoked.get(f"/api/v1/organization/{org}/applications").status_code == 401
    assert user_client.get(base).json() == {"tokens": []}
    assert log_entries(server, "create_oauth_api_token", org)[-1]["token_name"] == "ci"
    assert log_entries(server, "revoke_oauth_api_token", org)[-1]["token_name"] == "ci"


def test_application_token_errors(
    server: LiveServer, org: str, app: dict, user: TestUser, user_client, stranger, anon_client
) -> None:
    base = f"/api/v1/organization/{org}/applications/{app['client_id']}/tokens"
    for body in (
        {},
        {"name": "x"},
        {"name": "x", "scope": "nope"},
        {"name": "  ", "scope": "repo:read"},
    ):
        assert_api_error(user_client.post(base, json=body), 400, "invalid_request")
    assert user_client.get(base).json() == {"tokens": []}
    assert_api_error(user_client.delete(f"{base}/no-such-uuid"), 404, "not_found")
    assert_api_error(
        user_client.get(f"/api/v1/organization/{org}/applications/NOSUCH/tokens"), 404, "not_found"
    )
    assert_api_error(stranger.get(base), 403, "insufficient_scope")
    assert_api_error(anon_client.get(base), 401, "invalid_token")
    assert anon_client.post(base, json={"name": "a", "scope": "repo:read"}).json() == CSRF_FAILED
    narrow = issue_token(server, user.username, "org:admin repo:read")
    with bearer_client(server, narrow) as client:
        beyond = client.post(base, json={"name": "a", "scope": "repo:write"})
        assert_api_error(beyond, 403, "insufficient_scope")
        within = client.post(base, json={"name": "a", "scope": "repo:read"})
        assert within.status_code == 201
    superuser_scope = user_client.post(base, json={"name": "su", "scope": "super:user"})
    assert_api_error(superuser_scope, 403, "insufficient_scope")
