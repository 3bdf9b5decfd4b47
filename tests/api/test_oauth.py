"""The implicit grant: /oauth/authorize, /oauth/authorizeapp, /oauth/denyapp, /oauth/localapp."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

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

REDIRECT = "https://app.example/cb"


@pytest.fixture
def org(server: LiveServer, user: TestUser) -> str:
    return create_organization(server, user)


@pytest.fixture
def client_id(org: str, user_client) -> str:
    response = user_client.post(
        f"/api/v1/organization/{org}/applications", json={"name": "cli", "redirect_uri": REDIRECT}
    )
    return response.json()["client_id"]


@pytest.fixture
def browser(server: LiveServer, user: TestUser):
    client, csrf = cookie_session(server, user.username)
    with client:
        yield client, csrf


def grant(client_id: str, scope: str, **extra) -> dict:
    return {
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "response_type": "token",
        **extra,
    }


def token_from(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    fragment = parse_qs(location.fragment)
    assert fragment["token_type"] == ["Bearer"]
    assert fragment["expires_in"] == ["315576000"]
    token = fragment["access_token"][0]
    assert len(token) == 40
    return token


def test_consent_json_then_authorizeapp_issues_a_scoped_token(
    server: LiveServer, org: str, client_id: str, browser
) -> None:
    client, csrf = browser
    consent = client.get(
        "/oauth/authorize", params={**grant(client_id, "org:admin user:read"), "format": "json"}
    )
    assert consent.status_code == 200
    data = consent.json()
    assert data["application"]["name"] == "cli"
    assert data["application"]["organization"]["name"] == org
    assert sorted(s["scope"] for s in data["scopes"]) == ["org:admin", "user:read"]
    assert data["has_dangerous_scopes"] is True
    assert data["csrf_token_val"] == csrf
    response = client.post(
        "/oauth/authorizeapp",
        data={**grant(client_id, "org:admin user:read", state="xyz"), "_csrf_token": csrf},
    )
    token = token_from(response)
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    assert parse_qs(location.query)["state"] == ["xyz"]
    with bearer_client(server, token) as api:
        changed = api.put(f"/api/v1/organization/{org}", json={"tag_expiration_s": 0})
        assert changed.status_code == 200
        assert (
            api.post(f"/api/v1/organization/{org}/applications", json={"name": "x"}).status_code
            == 200
        )
        refused = api.post("/api/v1/organization/", json={"name": "neworg" + client_id.lower()[:6]})
        assert refused.status_code == 403


def test_a_narrow_token_is_refused_where_its_scopes_do_not_reach(
    server: LiveServer, org: str, client_id: str, browser
) -> None:
    client, csrf = browser
    token = token_from(
        client.post(
            "/oauth/authorizeapp", data={**grant(client_id, "user:read"), "_csrf_token": csrf}
        )
    )
    with bearer_client(server, token) as api:
        assert api.get(f"/api/v1/organization/{org}").json()["is_admin"] is False
        response = api.put(f"/api/v1/organization/{org}", json={"tag_expiration_s": 0})
        assert response.status_code == 403
        assert response.json()["error_type"] == "insufficient_scope"


def test_html_consent_page_and_already_granted_shortcut(
    server: LiveServer, client_id: str, browser
) -> None:
    client, csrf = browser
    page = client.get("/oauth/authorize", params=grant(client_id, "repo:read"))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'action="/oauth/authorizeapp"' in page.text and csrf in page.text
    token_from(
        client.post(
            "/oauth/authorizeapp", data={**grant(client_id, "repo:read"), "_csrf_token": csrf}
        )
    )
    again = client.get("/oauth/authorize", params=grant(client_id, "repo:read"))
    token_from(again)


def test_local_redirect_target_is_allowed(server: LiveServer, client_id: str, browser) -> None:
    client, csrf = browser
    local = f"{server.url}/oauth/localapp"
    response = client.post(
        "/oauth/authorizeapp",
        data={**grant(client_id, "repo:read"), "redirect_uri": local, "_csrf_token": csrf},
    )
    assert response.status_code == 302
    assert response.headers["location"].startswith(local + "?")
    page = client.get("/oauth/localapp")
    assert page.status_code == 200 and "access_token" in page.text


def test_authorizeapp_needs_csrf(client_id: str, browser) -> None:
    client, _ = browser
    response = client.post("/oauth/authorizeapp", data=grant(client_id, "repo:read"))
    assert response.status_code == 403
    wrong = client.post(
        "/oauth/authorizeapp", data={**grant(client_id, "repo:read"), "_csrf_token": "nope"}
    )
    assert wrong.status_code == 403


@pytest.mark.parametrize("missing", ["client_id", "redirect_uri", "scope"])
def test_required_params(client_id: str, browser, missing: str) -> None:
    client, csrf = browser
    params = grant(client_id, "repo:read")
    del params[missing]
    assert client.get("/oauth/authorize", params=params).json() == {
        "error": f"Required param: {missing}"
    }
    response = client.post("/oauth/authorizeapp", data={**params, "_csrf_token": csrf})
    assert response.status_code == 400


def test_anonymous_callers_get_401(anon_client, client_id: str) -> None:
    assert (
        anon_client.get("/oauth/authorize", params=grant(client_id, "repo:read")).status_code == 401
    )
    assert (
        anon_client.post("/oauth/authorizeapp", data=grant(client_id, "repo:read")).status_code
        == 401
    )


def test_bad_basic_credentials_get_401(server: LiveServer, user: TestUser, client_id: str) -> None:
    response = httpx.get(
        server.url + "/oauth/authorize",
        params=grant(client_id, "repo:read"),
        auth=(user.username, "wrong-password"),
    )
    assert response.status_code == 401


def test_non_admins_unknown_clients_and_foreign_redirects(
    server: LiveServer, client_id: str, browser
) -> None:
    outsider = create_user(server)
    other, csrf = cookie_session(server, outsider.username)
    with other:
        refused = other.post(
            "/oauth/authorizeapp", data={**grant(client_id, "repo:read"), "_csrf_token": csrf}
        )
        assert refused.status_code == 403
    client, csrf = browser
    unknown = client.get("/oauth/authorize", params=grant("NOSUCHCLIENT", "repo:read"))
    assert unknown.status_code == 404
    foreign = client.post(
        "/oauth/authorizeapp",
        data={
            **grant(client_id, "repo:read"),
            "redirect_uri": "https://evil.example/cb",
            "_csrf_token": csrf,
        },
    )
    assert foreign.status_code == 400
    assert "location" not in foreign.headers


@pytest.mark.parametrize("scope", ["repo:read, user:read", "nope", "direct_user_login"])
def test_invalid_scopes_redirect_with_an_error(client_id: str, browser, scope: str) -> None:
    client, csrf = browser
    response = client.post(
        "/oauth/authorizeapp", data={**grant(client_id, scope, state="s1"), "_csrf_token": csrf}
    )
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query == {"error": ["invalid_scope"], "state": ["s1"]}


def test_deny_redirects_with_access_denied(client_id: str, browser) -> None:
    client, _ = browser
    response = client.post("/oauth/denyapp", data=grant(client_id, "repo:read"))
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["access_denied"]


def test_basic_auth_with_whitelisted_client_skips_csrf(server_factory) -> None:
    live = server_factory()
    owner = create_user(live)
    org = create_organization(live, owner)
    with bearer_client(live, issue_token(live, owner.username, ALL_SCOPES)) as client:
        app = client.post(
            f"/api/v1/organization/{org}/applications", json={"name": "a", "redirect_uri": REDIRECT}
        ).json()
    refused = httpx.post(
        live.url + "/oauth/authorizeapp",
        data=grant(app["client_id"], "repo:read"),
        auth=(owner.username, owner.password),
    )
    assert refused.status_code == 403
    live.stop()
    live.config["DIRECT_OAUTH_CLIENTID_WHITELIST"] = [app["client_id"]]
    live.start()
    allowed = httpx.post(
        live.url + "/oauth/authorizeapp",
        data=grant(app["client_id"], "repo:read"),
        auth=(owner.username, owner.password),
    )
    token_from(allowed)


def test_deleting_the_application_revokes_its_tokens(
    server: LiveServer, org: str, client_id: str, browser, user_client
) -> None:
    client, csrf = browser
    token = token_from(
        client.post(
            "/oauth/authorizeapp", data={**grant(client_id, "org:admin"), "_csrf_token": csrf}
        )
    )
    with bearer_client(server, token) as api:
        assert api.get(f"/api/v1/organization/{org}/applications").status_code == 200
        assert (
            user_client.delete(f"/api/v1/organization/{org}/applications/{client_id}").status_code
            == 204
        )
        assert api.get(f"/api/v1/organization/{org}/applications").status_code == 401
