"""Assigned OAuth tokens: an org admin offers, the user lists, declines or accepts."""

from __future__ import annotations

import httpx
import pytest

from tests.api.test_oauth import REDIRECT, grant, token_from
from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.audit import log_entries
from tests.support.server import LiveServer
from tests.support.sessions import cookie_session

ASSIGNED = "/api/v1/user/assignedauthorization"


@pytest.fixture
def setup(server: LiveServer, user: TestUser, user_client: httpx.Client):
    """An organization run by `user` with one application, and a person to assign to."""
    org = create_organization(server, user)
    created = user_client.post(
        f"/api/v1/organization/{org}/applications",
        json={"name": "ci-bot", "redirect_uri": REDIRECT},
    )
    assignee = create_user(server)
    with bearer_client(server, issue_token(server, assignee.username, ALL_SCOPES)) as client:
        yield org, created.json()["client_id"], assignee, client


def _assign(client: httpx.Client, client_id: str, username: str, **extra) -> httpx.Response:
    params = {
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "repo:read user:read",
        "username": username,
        "response_type": "token",
        "format": "json",
        **extra,
    }
    return client.post("/oauth/authorize/assignuser", params=params)


def test_assigned_token_is_accepted_by_approving_the_app(
    server: LiveServer, user: TestUser, user_client: httpx.Client, setup
) -> None:
    org, client_id, assignee, assignee_client = setup
    assigned = _assign(user_client, client_id, assignee.username)
    assert assigned.status_code == 200
    assert assigned.json() == {"message": "Token assigned successfully"}
    entry = log_entries(server, org, "oauth_token_assigned")[-1]
    assert entry == {
        "assigning_user": user.username,
        "assigned_user": assignee.username,
        "application": "ci-bot",
        "client_id": client_id,
    }
    kinds = [
        n["kind"] for n in assignee_client.get("/api/v1/user/notifications").json()["notifications"]
    ]
    assert "assigned_authorization" in kinds

    [offer] = assignee_client.get(ASSIGNED).json()["authorizations"]
    assert offer["application"]["name"] == "ci-bot"
    assert offer["application"]["clientId"] == client_id
    assert offer["application"]["organization"]["name"] == org
    assert offer["redirectUri"] == REDIRECT
    assert offer["responseType"] == "token"
    assert [scope["scope"] for scope in offer["scopes"]] == ["repo:read", "user:read"]
    # Seeing the offers clears their notification.
    kinds = [
        n["kind"] for n in assignee_client.get("/api/v1/user/notifications").json()["notifications"]
    ]
    assert "assigned_authorization" not in kinds

    browser, csrf = cookie_session(server, assignee.username)
    with browser:
        # Not an admin of the organization: only the assignment opens the consent.
        plain = browser.get(
            "/oauth/authorize", params={**grant(client_id, "repo:read user:read"), "format": "json"}
        )
        assert plain.status_code == 403
        wanted = {**grant(client_id, "repo:read user:read"), "assignment_uuid": offer["uuid"]}
        consent = browser.get("/oauth/authorize", params={**wanted, "format": "json"})
        assert consent.status_code == 200
        assert consent.json()["assignment_uuid"] == offer["uuid"]
        code_flow = browser.get("/oauth/authorize", params={**wanted, "response_type": "code"})
        assert code_flow.status_code == 400
        token = token_from(
            browser.post("/oauth/authorizeapp", data={**wanted, "_csrf_token": csrf})
        )
        # The assignment is used up.
        again = browser.post("/oauth/authorizeapp", data={**wanted, "_csrf_token": csrf})
        assert again.status_code == 403
    with bearer_client(server, token) as app:
        assert app.get("/api/v1/user/").json()["username"] == assignee.username
    assert assignee_client.get(ASSIGNED).json() == {"authorizations": []}
    grants = assignee_client.get("/api/v1/user/authorizations").json()["authorizations"]
    assert [g["application"]["name"] for g in grants] == ["ci-bot"]


def test_declining_an_assignment(server: LiveServer, user_client: httpx.Client, setup) -> None:
    _, client_id, assignee, assignee_client = setup
    _assign(user_client, client_id, assignee.username)
    [offer] = assignee_client.get(ASSIGNED).json()["authorizations"]
    stranger = create_user(server)
    with bearer_client(server, issue_token(server, stranger.username, ALL_SCOPES)) as other:
        assert other.delete(f"{ASSIGNED}/{offer['uuid']}").status_code == 404
        assert other.get(ASSIGNED).json() == {"authorizations": []}
    assert assignee_client.delete(f"{ASSIGNED}/{offer['uuid']}").status_code == 204
    assert assignee_client.delete(f"{ASSIGNED}/{offer['uuid']}").status_code == 404
    assert assignee_client.get(ASSIGNED).json() == {"authorizations": []}


def test_assignment_refusals(server: LiveServer, user_client: httpx.Client, setup) -> None:
    _, client_id, assignee, assignee_client = setup
    # Only the organization's admins assign its application's tokens.
    outsider = _assign(assignee_client, client_id, assignee.username)
    assert outsider.status_code == 403
    assert _assign(user_client, client_id, "nosuchperson").status_code == 404
    assert _assign(user_client, "NOSUCHCLIENT", assignee.username).status_code == 404
    missing = user_client.post(
        "/oauth/authorize/assignuser", params={"client_id": client_id, "scope": "repo:read"}
    )
    assert missing.status_code == 400
    assert missing.json() == {"message": "Required param: redirect_uri"}
    anonymous = httpx.post(
        f"{server.url}/oauth/authorize/assignuser",
        params={"client_id": client_id, "redirect_uri": REDIRECT, "scope": "x", "username": "y"},
    )
    assert anonymous.status_code == 403
    assert assignee_client.get(ASSIGNED).json() == {"authorizations": []}
    with bearer_client(server, issue_token(server, assignee.username, "user:read")) as reader:
        assert reader.get(ASSIGNED).status_code == 403
    assert httpx.get(f"{server.url}{ASSIGNED}").status_code == 401
