"""The session cookie carries `Secure` whenever the installation's external scheme is https,
so a browser never sends it over plain http; on an http installation it cannot."""

from __future__ import annotations

import httpx
import pytest

from tests.support.accounts import create_user
from tests.support.server import LiveServer


def _set_cookie(response: httpx.Response, name: str) -> str:
    cookies = [v for k, v in response.headers.multi_items() if k.lower() == "set-cookie"]
    matching = [c for c in cookies if c.startswith(f"{name}=")]
    assert len(matching) == 1, cookies
    return matching[0]


def _attributes(set_cookie: str) -> list[str]:
    return [part.strip().lower() for part in set_cookie.split(";")[1:]]


def _carry(client: httpx.Client, set_cookie: str, name: str) -> None:
    """Hold the cookie as a browser on the https side of a proxy would (httpx, rightly,
    keeps Secure cookies off this plain-http test connection)."""
    value = set_cookie.split(";", 1)[0].split("=", 1)[1]
    client.cookies.clear()
    client.cookies.set(name, value)


def _session_cookies(live: LiveServer) -> list[list[str]]:
    """The cookie's attributes as set by /csrf_token, sign-in and sign-out."""
    person = create_user(live)
    name = live.settings.SESSION_COOKIE_NAME
    with httpx.Client(base_url=live.url, timeout=30) as client:
        started = client.get("/csrf_token")
        _carry(client, _set_cookie(started, name), name)
        client.headers["X-CSRF-Token"] = started.json()["csrf_token"]
        signed_in = client.post(
            "/api/v1/signin", json={"username": person.username, "password": person.password}
        )
        assert signed_in.status_code == 200, signed_in.text
        _carry(client, _set_cookie(signed_in, name), name)
        client.headers["X-CSRF-Token"] = signed_in.headers["X-Next-CSRF-Token"]
        assert client.get("/api/v1/user/").json()["username"] == person.username
        signed_out = client.post("/api/v1/signout")
        assert signed_out.status_code == 200, signed_out.text
    return [_attributes(_set_cookie(r, name)) for r in (started, signed_in, signed_out)]


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_the_session_cookie_is_secure_under_https(server_factory, scheme: str) -> None:
    # A proxy in front terminates TLS, so the server itself needs no certificate.
    live = server_factory({"PREFERRED_URL_SCHEME": scheme, "EXTERNAL_TLS_TERMINATION": True})
    for attributes in _session_cookies(live):
        assert "httponly" in attributes
        assert "samesite=lax" in attributes
        assert ("secure" in attributes) is (scheme == "https")


def test_a_readable_marker_says_only_that_someone_is_signed_in(server: LiveServer) -> None:
    """The UI learns the signed-out state from this cookie instead of a call answering 401."""
    person = create_user(server)
    marker = server.settings.SESSION_COOKIE_NAME + "_signed_in"
    with httpx.Client(base_url=server.url, timeout=30) as client:
        started = client.get("/csrf_token")
        assert marker not in client.cookies
        client.headers["X-CSRF-Token"] = started.json()["csrf_token"]
        signed_in = client.post(
            "/api/v1/signin", json={"username": person.username, "password": person.password}
        )
        assert signed_in.status_code == 200, signed_in.text
        set_marker = _set_cookie(signed_in, marker)
        assert set_marker.split(";", 1)[0] == f"{marker}=1"
        assert "httponly" not in _attributes(set_marker)
        assert "samesite=lax" in _attributes(set_marker)
        client.headers["X-CSRF-Token"] = signed_in.headers["X-Next-CSRF-Token"]
        refreshed = client.get("/api/v1/user/")
        assert client.cookies.get(marker) == "1", refreshed.headers
        signed_out = client.post("/api/v1/signout")
        assert signed_out.status_code == 200, signed_out.text
        assert marker not in client.cookies
        assert client.get("/api/v1/user/").status_code == 401
