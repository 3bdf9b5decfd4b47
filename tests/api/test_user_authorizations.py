"""/api/v1/user/authorizations: the grants a user gave OAuth applications."""

from __future__ import annotations

import httpx

from tests.api.test_oauth import REDIRECT, grant, token_from
from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.server import LiveServer
from tests.support.sessions import cookie_session

BASE = "/api/v1/user/authorizations"


def _authorize(server: LiveServer, user: TestUser, client_id: str, scope: str) -> str:
    """The user grants the application `scope` through the implicit flow; returns its token."""
    client, csrf = cookie_session(server, user.username)
    with client:
        response = client.post(
            "/oauth/authorizeapp", data={**grant(client_id, scope), "_csrf_token": csrf}
        )
    return token_from(response)


def test_list_inspect_and_revoke_a_grant(
    server: LiveServer, user: TestUser, user_client: httpx.Client
) -> None:
    org = create_organization(server, user)
    created = user_client.post(
        f"/api/v1/organization/{org}/applications",
        json={"name": "deployer", "redirect_uri": REDIRECT, "description": "ships things"},
    )
    client_id = created.json()["client_id"]
    app_token = _authorize(server, user, client_id, "repo:read user:read")

    listed = user_client.get(BASE)
    assert listed.status_code == 200
    # The test's own bearer token belongs to no application, so it is not an authorization.
    [entry] = listed.json()["authorizations"]
    assert entry["application"]["name"] == "deployer"
    assert entry["application"]["description"] == "ships things"
    assert entry["application"]["organization"]["name"] == org
    assert entry["application"]["avatar"]["kind"] == "app"
    assert [scope["scope"] for scope in entry["scopes"]] == ["repo:read", "user:read"]
    assert entry["scopes"][0]["dangerous"] is False
    assert app_token not in listed.text

    one = user_client.get(f"{BASE}/{entry['uuid']}")
    assert one.status_code == 200 and one.json() == entry

    with bearer_client(server, app_token) as app:
        assert app.get("/api/v1/user/").status_code == 200
        # A grant without user:admin cannot list or revoke grants.
        assert app.get(BASE).status_code == 403
        assert app.delete(f"{BASE}/{entry['uuid']}").status_code == 403

    stranger = create_user(server)
    with bearer_client(server, issue_token(server, stranger.username, ALL_SCOPES)) as other:
        assert other.get(BASE).json() == {"authorizations": []}
        assert other.get(f"{BASE}/{entry['uuid']}").status_code == 404
        assert other.delete(f"{BASE}/{entry['uuid']}").status_code == 404

    assert user_client.delete(f"{BASE}/{entry['uuid']}").status_code == 204
    with bearer_client(server, app_token) as app:
        assert app.get("/api/v1/user/").status_code == 401
    assert user_client.get(BASE).json() == {"authorizations": []}
    gone = user_client.get(f"{BASE}/{entry['uuid']}")
    assert gone.status_code == 404
    assert gone.json()["error_type"] == "not_found"
    assert user_client.delete(f"{BASE}/{entry['uuid']}").status_code == 404


def test_anonymous_callers_are_refused(server: LiveServer) -> None:
    anonymous = httpx.get(f"{server.url}{BASE}")
    assert anonymous.status_code == 401
    assert anonymous.json()["error_type"] == "invalid_token"
