"""The applications a user authorized through OAuth: list, read and revoke their tokens."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.accounts import (
    ALL_SCOPES,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.server import LiveServer
from tests.support.sessions import cookie_session, session_client

REDIRECT = "https://app.example/cb"


def _authorize(server: LiveServer, username: str, client_id: str, scope: str) -> str:
    """The implicit grant as a signed-in browser performs it; returns the issued token."""
    client, csrf = cookie_session(server, username)
    with client:
        response = client.post(
            "/oauth/authorizeapp",
            data={
                "client_id": client_id,
                "redirect_uri": REDIRECT,
                "scope": scope,
                "response_type": "token",
                "_csrf_token": csrf,
            },
        )
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["location"]).fragment)["access_token"][0]


def test_user_lists_and_revokes_an_authorized_application(server: LiveServer) -> None:
    owner = create_user(server)
    org = create_organization(server, owner)
    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as admin_api:
        created = admin_api.post(
            f"/api/v1/organization/{org}/applications",
            json={
                "name": "deploy bot",
                "redirect_uri": REDIRECT,
                "application_uri": "https://bot.example",
            },
        )
        client_id = created.json()["client_id"]
    # Quay lets only the organization's administrators authorize its applications.
    someone = owner
    app_token = _authorize(server, someone.username, client_id, "repo:read user:read")
    with bearer_client(server, app_token) as app_api:
        assert app_api.get("/api/v1/user/").status_code == 200

    with session_client(server, someone.username, someone.password) as client:
        listed = client.get("/api/v1/user/authorizations")
        assert listed.status_code == 200
        [authorization] = listed.json()["authorizations"]
        assert authorization["application"]["name"] == "deploy bot"
        assert authorization["application"]["url"] == "https://bot.example"
        assert authorization["application"]["organization"]["name"] == org
        assert set(authorization["application"]["avatar"]) == {"name", "hash", "color", "kind"}
        assert [s["scope"] for s in authorization["scopes"]] == ["repo:read", "user:read"]
        assert set(authorization["scopes"][0]) == {
            "title",
            "scope",
            "description",
            "icon",
            "dangerous",
        }
        uuid = authorization["uuid"]
        assert client.get(f"/api/v1/user/authorizations/{uuid}").json() == authorization
        # Tokens without an application (issued by an administrator) are not listed.
        issue_token(server, someone.username, "repo:read")
        assert len(client.get("/api/v1/user/authorizations").json()["authorizations"]) == 1

        revoked = client.delete(f"/api/v1/user/authorizations/{uuid}")
        assert revoked.status_code == 204
        assert client.get("/api/v1/user/authorizations").json() == {"authorizations": []}
        assert client.get(f"/api/v1/user/authorizations/{uuid}").status_code == 404
        assert client.delete(f"/api/v1/user/authorizations/{uuid}").status_code == 404
    with bearer_client(server, app_token) as app_api:
        assert app_api.get("/api/v1/user/").status_code == 401


def test_authorizations_are_private_to_their_user(server: LiveServer) -> None:
    owner = create_user(server)
    org = create_organization(server, owner)
    with bearer_client(server, issue_token(server, owner.username, ALL_SCOPES)) as admin_api:
        client_id = admin_api.post(
            f"/api/v1/organization/{org}/applications",
            json={"name": "app", "redirect_uri": REDIRECT},
        ).json()["client_id"]
    victim = owner
    victim_token = _authorize(server, victim.username, client_id, "repo:read")
    with session_client(server, victim.username, victim.password) as client:
        uuid = client.get("/api/v1/user/authorizations").json()["authorizations"][0]["uuid"]

    attacker = create_user(server)
    with session_client(server, attacker.username, attacker.password) as client:
        assert client.get("/api/v1/user/authorizations").json() == {"authorizations": []}
        assert client.get(f"/api/v1/user/authorizations/{uuid}").status_code == 404
        assert client.delete(f"/api/v1/user/authorizations/{uuid}").status_code == 404
    # A token without user:admin may not see or revoke its user's authorizations.
    with bearer_client(server, victim_token) as app_api:
        refused = app_api.get("/api/v1/user/authorizations")
        assert refused.status_code == 403
        assert refused.json()["error_type"] == "insufficient_scope"
        assert app_api.delete(f"/api/v1/user/authorizations/{uuid}").status_code == 403
    assert httpx.get(server.url + "/api/v1/user/authorizations").status_code == 401
    with bearer_client(server, victim_token) as app_api:
        assert app_api.get("/api/v1/repository", params={"public": "true"}).status_code == 200
