"""Assigned OAuth tokens (/oauth/authorize/assignuser, /api/v1/user/assignedauthorization…)
and the authorization-code grant (/oauth/access_token)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update

from cargohold.db.models.accounts import OAuthAuthorizationCode
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

REDIRECT = "https://app.example/cb"


class Party:
    """A person with a signed-in browser session and its CSRF token."""

    def __init__(self, server: LiveServer, user: TestUser) -> None:
        self.user = user
        self.client, self.csrf = cookie_session(server, user.username)
        self.client.headers["X-CSRF-Token"] = self.csrf


@pytest.fixture
def admin_party(server: LiveServer) -> Iterator[Party]:
    party = Party(server, create_user(server))
    yield party
    party.client.close()


@pytest.fixture
def assignee(server: LiveServer) -> Iterator[Party]:
    party = Party(server, create_user(server))
    yield party
    party.client.close()


@pytest.fixture
def org(server: LiveServer, admin_party: Party) -> str:
    return create_organization(server, admin_party.user)


@pytest.fixture
def app(server: LiveServer, org: str, admin_party: Party) -> dict:
    with bearer_client(server, issue_token(server, admin_party.user.username, ALL_SCOPES)) as c:
        created = c.post(
            f"/api/v1/organization/{org}/applications",
            json={"name": "deployer", "redirect_uri": REDIRECT},
        )
    assert created.status_code == 200, created.text
    return created.json()


def _assign(party: Party, app: dict, username: str, **extra: str) -> httpx.Response:
    params = {
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "repo:read user:read",
        "username": username,
        "response_type": "token",
        "format": "json",
        **extra,
    }
    return party.client.post("/oauth/authorize/assignuser", params=params)


def _assignments(party: Party) -> list[dict]:
    response = party.client.get("/api/v1/user/assignedauthorization")
    assert response.status_code == 200, response.text
    return response.json()["authorizations"]


def _approve(party: Party, app: dict, assignment_uuid: str, **extra: str) -> httpx.Response:
    form = {
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "repo:read user:read",
        "response_type": "token",
        "assignment_uuid": assignment_uuid,
        "_csrf_token": party.csrf,
        **extra,
    }
    return party.client.post("/oauth/authorizeapp", data=form)


def _fragment_token(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    fragment = parse_qs(urlsplit(response.headers["location"]).fragment)
    return fragment["access_token"][0]


# --- assignments ---------------------------------------------------------------------------


def test_assigned_token_is_listed_approved_once_and_gone(
    server: LiveServer, org: str, app: dict, admin_party: Party, assignee: Party
) -> None:
    assigned = _assign(admin_party, app, assignee.user.username)
    assert assigned.status_code == 200, assigned.text
    assert assigned.json() == {"message": "Token assigned successfully"}
    assert log_entries(server, org, "oauth_token_assigned") == [
        {
            "assigning_user": admin_party.user.username,
            "assigned_user": assignee.user.username,
            "application": "deployer",
            "client_id": app["client_id"],
        }
    ]
    kinds = [
        n["kind"] for n in assignee.client.get("/api/v1/user/notifications").json()["notifications"]
    ]
    assert "assigned_authorization" in kinds

    [listed] = _assignments(assignee)
    assert listed["application"]["clientId"] == app["client_id"]
    assert listed["application"]["name"] == "deployer"
    assert listed["application"]["organization"]["name"] == org
    assert listed["redirectUri"] == REDIRECT
    assert listed["responseType"] == "token"
    assert sorted(s["scope"] for s in listed["scopes"]) == ["repo:read", "user:read"]
    # Listing counts as reading the notification.
    kinds = [
        n["kind"] for n in assignee.client.get("/api/v1/user/notifications").json()["notifications"]
    ]
    assert "assigned_authorization" not in kinds

    # Not an admin of the organization: only the assignment lets the assignee in.
    plain = assignee.client.get(
        "/oauth/authorize",
        params={
            "client_id": app["client_id"],
            "redirect_uri": REDIRECT,
            "scope": "repo:read user:read",
            "response_type": "token",
        },
    )
    assert plain.status_code == 403
    consent = assignee.client.get(
        "/oauth/authorize",
        params={
            "client_id": app["client_id"],
            "redirect_uri": REDIRECT,
            "scope": "repo:read user:read",
            "response_type": "token",
            "assignment_uuid": listed["uuid"],
            "format": "json",
        },
    )
    assert consent.status_code == 200, consent.text
    assert consent.json()["assignment_uuid"] == listed["uuid"]

    token = _fragment_token(_approve(assignee, app, listed["uuid"]))
    with bearer_client(server, token) as api:
        me = api.get("/api/v1/user/")
        assert me.status_code == 200
        assert me.json()["username"] == assignee.user.username
    assert _assignments(assignee) == []
    # Used up: the same assignment opens nothing a second time.
    assert _approve(assignee, app, listed["uuid"]).status_code == 403


def test_rejected_assignment(
    server: LiveServer, app: dict, admin_party: Party, assignee: Party
) -> None:
    assert _assign(admin_party, app, assignee.user.username).status_code == 200
    [listed] = _assignments(assignee)
    path = f"/api/v1/user/assignedauthorization/{listed['uuid']}"
    # Someone else cannot see or remove it.
    assert admin_party.client.delete(path).status_code == 404
    assert assignee.client.delete(path).status_code == 204
    assert assignee.client.delete(path).status_code == 404
    assert _assignments(assignee) == []
    assert _approve(assignee, app, listed["uuid"]).status_code == 403


def test_assignment_is_for_token_responses_only(
    app: dict, admin_party: Party, assignee: Party
) -> None:
    assert _assign(admin_party, app, assignee.user.username).status_code == 200
    [listed] = _assignments(assignee)
    response = _approve(assignee, app, listed["uuid"], response_type="code")
    assert response.status_code == 400
    assert _assignments(assignee) != []


def test_assignuser_refusals(
    server: LiveServer, app: dict, admin_party: Party, assignee: Party
) -> None:
    # Only admins of the application's organization may assign.
    refused = _assign(assignee, app, admin_party.user.username)
    assert refused.status_code == 403
    assert _assign(admin_party, app, "nosuchuser0").status_code == 404
    unknown_app = _assign(admin_party, {"client_id": "NOSUCHAPP"}, assignee.user.username)
    assert unknown_app.status_code == 404
    assert _assign(admin_party, app, assignee.user.username, scope="bogus").status_code == 400
    too_long = " ".join(["repo:read"] * 40)
    assert _assign(admin_party, app, assignee.user.username, scope=too_long).status_code == 400
    off_site = _assign(
        admin_party, app, assignee.user.username, redirect_uri="https://evil.example/cb"
    )
    assert off_site.status_code == 400
    missing = admin_party.client.post(
        "/oauth/authorize/assignuser",
        params={"client_id": app["client_id"], "redirect_uri": REDIRECT, "scope": "repo:read"},
    )
    assert (missing.status_code, missing.json()) == (400, {"error": "Required param: username"})
    # A session without its CSRF token cannot assign (a cross-site form could otherwise).
    del admin_party.client.headers["X-CSRF-Token"]
    assert _assign(admin_party, app, assignee.user.username).status_code == 403
    anonymous = httpx.post(
        f"{server.url}/oauth/authorize/assignuser",
        params={
            "client_id": app["client_id"],
            "redirect_uri": REDIRECT,
            "scope": "repo:read",
            "username": assignee.user.username,
        },
    )
    assert anonymous.status_code == 401
    assert _assignments(assignee) == []


def test_assigned_authorizations_need_a_user(server: LiveServer) -> None:
    response = httpx.get(f"{server.url}/api/v1/user/assignedauthorization")
    assert response.status_code == 401
    person = create_user(server)
    with bearer_client(server, issue_token(server, person.username, "user:read")) as api:
        assert api.get("/api/v1/user/assignedauthorization").status_code == 403


def test_feature_off_hides_assignments(server_factory) -> None:
    live = server_factory({"FEATURE_ASSIGN_OAUTH_TOKEN": False})
    person = create_user(live)
    party = Party(live, person)
    with party.client:
        assert party.client.get("/api/v1/user/assignedauthorization").status_code == 404
        org = create_organization(live, person)
        with bearer_client(live, issue_token(live, person.username, ALL_SCOPES)) as c:
            app = c.post(
                f"/api/v1/organization/{org}/applications",
                json={"name": "x", "redirect_uri": REDIRECT},
            ).json()
        assert _assign(party, app, person.username).status_code == 404


# --- the authorization-code grant ------------------------------------------------------------


def _code_from(response: httpx.Response) -> tuple[str, dict[str, list[str]]]:
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    assert not location.fragment
    query = parse_qs(location.query)
    return query["code"][0], query


def _authorize_code(party: Party, app: dict, scope: str = "repo:read") -> str:
    response = party.client.post(
        "/oauth/authorizeapp",
        data={
            "client_id": app["client_id"],
            "redirect_uri": REDIRECT,
            "scope": scope,
            "state": "s1",
            "_csrf_token": party.csrf,
        },
    )
    code, query = _code_from(response)
    assert query["state"] == ["s1"] and query["scope"] == [scope]
    return code


def _exchange(server: LiveServer, app: dict, grant_code: str, **changes: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "redirect_uri": REDIRECT,
        "code": grant_code,
        "scope": "repo:read",
        **changes,
    }
    return httpx.post(f"{server.url}/oauth/access_token", data=form, timeout=30)


def test_code_grant_issues_a_token_once(
    server: LiveServer, org: str, app: dict, admin_party: Party
) -> None:
    code = _authorize_code(admin_party, app)
    assert len(code) == 40
    response = _exchange(server, app, code)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer" and body["refresh_token"] is None
    assert body["expires_in"] == 315576000
    with bearer_client(server, body["access_token"]) as api:
        assert api.get(f"/api/v1/organization/{org}/applications").status_code == 403
        assert api.get("/api/v1/user/").status_code != 200  # repo:read only
    again = _exchange(server, app, code)
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})


def test_code_grant_refusals(server: LiveServer, app: dict, admin_party: Party) -> None:
    code = _authorize_code(admin_party, app)
    cases = [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({"client_secret": "WRONG"}, "invalid_client"),
        ({"client_secret": ""}, "invalid_client"),
        ({"client_id": "NOSUCHCLIENT"}, "invalid_client"),
        ({"redirect_uri": REDIRECT + "/other"}, "invalid_grant"),
        ({"scope": "repo:write"}, "invalid_grant"),
        ({"code": code[:20] + "X" * 20}, "invalid_grant"),
        ({"code": "short"}, "invalid_grant"),
    ]
    for changes, error in cases:
        response = _exchange(server, app, code, **changes)
        assert (response.status_code, response.json()) == (400, {"error": error}), changes
    missing = httpx.post(f"{server.url}/oauth/access_token", data={"grant_type": "x"})
    assert (missing.status_code, missing.json()) == (400, {"error": "Required param: client_id"})
    # None of the failures spent the code.
    assert _exchange(server, app, code).status_code == 200


def test_code_grant_with_basic_client_credentials(
    server: LiveServer, app: dict, admin_party: Party
) -> None:
    code = _authorize_code(admin_party, app)
    response = httpx.post(
        f"{server.url}/oauth/access_token",
        data={
            "grant_type": "authorization_code",
            "client_id": app["client_id"],
            "redirect_uri": REDIRECT,
            "code": code,
            "scope": "repo:read",
        },
        auth=(app["client_id"], app["client_secret"]),
    )
    assert response.status_code == 200, response.text


def test_an_overlong_scope_string_gets_no_code(app: dict, admin_party: Party) -> None:
    response = admin_party.client.post(
        "/oauth/authorizeapp",
        data={
            "client_id": app["client_id"],
            "redirect_uri": REDIRECT,
            "scope": " ".join(["repo:read"] * 40),
            "_csrf_token": admin_party.csrf,
        },
    )
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["invalid_scope"]


def test_expired_code_is_refused(server: LiveServer, app: dict, admin_party: Party) -> None:
    code = _authorize_code(admin_party, app)
    with server.db() as session:
        session.execute(
            update(OAuthAuthorizationCode)
            .where(OAuthAuthorizationCode.code_name == code[:20])
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    response = _exchange(server, app, code)
    assert (response.status_code, response.json()) == (400, {"error": "invalid_grant"})


def test_code_is_the_default_response_and_already_granted_answers_at_once(
    server: LiveServer, app: dict, admin_party: Party
) -> None:
    params = {"client_id": app["client_id"], "redirect_uri": REDIRECT, "scope": "repo:read"}
    consent = admin_party.client.get("/oauth/authorize", params={**params, "format": "json"})
    assert consent.status_code == 200
    assert consent.json()["response_type"] == "code"
    assert _exchange(server, app, _authorize_code(admin_party, app)).status_code == 200
    code, _ = _code_from(admin_party.client.get("/oauth/authorize", params=params))
    assert _exchange(server, app, code).status_code == 200
