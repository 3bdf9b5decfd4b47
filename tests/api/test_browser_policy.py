"""Quay's browser-facing rules: CORS and preflight on the API, XHR-only GETs from browsers,
and SESSION_TIMEOUT for browser sessions."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.accounts import create_user
from tests.support.server import LiveServer
from tests.support.sessions import session_client, signin

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
HEADLESS_CHROME = CHROME.replace("Chrome/", "HeadlessChrome/")
XHR_REQUIRED = "API calls must be invoked with an X-Requested-With header if called from a browser"
API_CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "DELETE, GET, HEAD, OPTIONS, POST, PUT",
    "access-control-max-age": "21600",
    "access-control-allow-headers": "AUTHORIZATION, CONTENT-TYPE, X-REQUESTED-WITH",
}


def _cors(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def test_api_responses_and_errors_carry_quays_cors_headers(anon_client: httpx.Client) -> None:
    assert _cors(anon_client.get("/api/v1/messages")) == API_CORS
    assert _cors(anon_client.get("/api/v1/user/")) == API_CORS
    assert anon_client.get("/api/v1/user/").status_code == 401
    # Without CORS_ORIGIN, /config answers no cross-origin reader.
    assert _cors(anon_client.get("/config")) == {}
    assert _cors(anon_client.get("/health/instance")) == {}


def test_preflight_lists_the_methods_of_the_route(anon_client: httpx.Client) -> None:
    collection = anon_client.options(
        "/api/v1/messages",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
    )
    assert collection.status_code == 200
    assert collection.content == b""
    assert collection.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert _cors(collection) == API_CORS
    item = anon_client.options("/api/v1/message/0b1e0000-0000-0000-0000-000000000000")
    assert item.status_code == 200
    assert item.headers["allow"] == "DELETE, OPTIONS"
    missing = anon_client.options("/api/v1/no-such-resource")
    assert missing.status_code == 404


def test_preflight_runs_no_endpoint(server: LiveServer, admin, anon_client) -> None:
    with session_client(server, admin.username, admin.password) as client:
        response = client.request(
            "OPTIONS",
            "/api/v1/messages",
            json={"message": {"content": "pre", "media_type": "text/plain", "severity": "info"}},
        )
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
    contents = [m["content"] for m in anon_client.get("/api/v1/messages").json()["messages"]]
    assert "pre" not in contents


def test_configured_origins_may_send_cookies(server_factory) -> None:
    single = server_factory({"CORS_ORIGIN": ["https://ui.example"]})
    response = httpx.get(
        single.url + "/api/v1/messages", headers={"Origin": "https://evil.example"}
    )
    assert response.headers["access-control-allow-origin"] == "https://ui.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-headers"] == (
        "AUTHORIZATION, CONTENT-TYPE, X-REQUESTED-WITH, COOKIE, X-CSRF-TOKEN"
    )
    config = httpx.get(single.url + "/config")
    assert config.headers["access-control-allow-origin"] == "https://ui.example"

    several = server_factory({"CORS_ORIGIN": ["https://a.example", "https://b.example"]})
    listed = httpx.get(several.url + "/api/v1/messages", headers={"Origin": "https://b.example"})
    assert listed.headers["access-control-allow-origin"] == "https://b.example"
    assert listed.headers["access-control-allow-credentials"] == "true"
    assert listed.headers["vary"] == "Origin"
    # An origin that is not listed gets the anonymous answer: any origin, never cookies.
    other = httpx.get(several.url + "/api/v1/messages", headers={"Origin": "https://evil.example"})
    assert other.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in other.headers
    assert (
        _cors(httpx.get(several.url + "/config", headers={"Origin": "https://evil.example"})) == {}
    )


@pytest.mark.parametrize("agent", [FIREFOX, CHROME])
def test_browser_gets_without_xhr_header_are_refused(server: LiveServer, admin, agent: str) -> None:
    with session_client(server, admin.username, admin.password) as client:
        client.headers["User-Agent"] = agent
        refused = client.get("/api/v1/user/")
        assert refused.status_code == 400
        assert refused.json() == {"error": XHR_REQUIRED}
        assert admin.username not in refused.text
        assert _cors(refused) == API_CORS
        allowed = client.get("/api/v1/user/", headers={"X-Requested-With": "XMLHttpRequest"})
        assert allowed.status_code == 200
        assert allowed.json()["username"] == admin.username
        # Only GETs: other methods are guarded by the CSRF token instead.
        posted = client.post("/api/v1/messages", json={"message": "x"})
        assert posted.status_code == 400
        assert posted.json()["error_type"] == "invalid_request"


@pytest.mark.parametrize("agent", [HEADLESS_CHROME, "curl/8.5.0", "python-httpx/0.27", ""])
def test_clients_quay_does_not_count_as_browsers_pass(anon_client, agent: str) -> None:
    response = anon_client.get("/api/v1/messages", headers={"User-Agent": agent})
    assert response.status_code == 200


def test_xhr_rule_can_be_switched_off(server_factory) -> None:
    live = server_factory({"BROWSER_API_CALLS_XHR_ONLY": False})
    response = httpx.get(live.url + "/api/v1/messages", headers={"User-Agent": FIREFOX})
    assert response.status_code == 200


def _max_age(response: httpx.Response, cookie_name: str) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{cookie_name}="):
            attributes = dict(
                part.strip().split("=", 1) for part in header.split(";")[1:] if "=" in part
            )
            return attributes.get("Max-Age")
    raise AssertionError(f"no {cookie_name} cookie set")


def test_default_session_lasts_31_days(server: LiveServer) -> None:
    someone = create_user(server)
    cookie = server.settings.SESSION_COOKIE_NAME
    with httpx.Client(base_url=server.url) as client:
        client.headers["X-CSRF-Token"] = client.get("/csrf_token").json()["csrf_token"]
        response = signin(client, someone.username, someone.password)
        assert _max_age(response, cookie) == str(31 * 86400)


def test_permanent_sessions_end_after_session_timeout_of_inactivity(server_factory) -> None:
    live = server_factory({"SESSION_TIMEOUT": "4s"})
    someone = create_user(live)
    cookie = live.settings.SESSION_COOKIE_NAME
    with session_client(live, someone.username, someone.password) as client:
        for _ in range(3):
            # Each request renews the session: 7.5 s after sign-in it is still alive.
            time.sleep(2.5)
            response = client.get("/api/v1/user/")
            assert response.status_code == 200
            assert _max_age(response, cookie) == "4"
        time.sleep(5)
        assert client.get("/api/v1/user/").status_code == 401


def test_browser_sessions_end_session_timeout_after_sign_in(server_factory) -> None:
    live = server_factory({"SESSION_TIMEOUT": "4s", "FEATURE_PERMANENT_SESSIONS": False})
    someone = create_user(live)
    cookie = live.settings.SESSION_COOKIE_NAME
    with httpx.Client(base_url=live.url) as client:
        client.headers["X-CSRF-Token"] = client.get("/csrf_token").json()["csrf_token"]
        response = signin(client, someone.username, someone.password)
        assert response.status_code == 200
        # A cookie for this browser session only: no Max-Age, no Expires.
        assert _max_age(response, cookie) is None
        assert "expires" not in response.headers["set-cookie"].lower()
        time.sleep(2.5)
        active = client.get("/api/v1/user/")
        assert active.status_code == 200
        assert "set-cookie" not in active.headers
        time.sleep(2.5)
        assert client.get("/api/v1/user/").status_code == 401
