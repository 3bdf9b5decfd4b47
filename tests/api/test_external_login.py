"""External sign-in endpoints on a registry that signs people in with its own database only."""

from __future__ import annotations

import httpx

from tests.support.accounts import bearer_client, issue_token
from tests.support.server import LiveServer
from tests.support.sessions import csrf_client


def test_no_external_login_service_is_known(server: LiveServer) -> None:
    with csrf_client(server) as client:
        unknown = client.post("/api/v1/externallogin/github", json={"kind": "login"})
        assert unknown.status_code == 400
        assert unknown.json()["error_type"] == "invalid_request"
        assert unknown.json()["detail"] == "Unknown external login service: github"
        bad_kind = client.post("/api/v1/externallogin/github", json={"kind": "steal"})
        assert bad_kind.status_code == 400
        assert bad_kind.json()["detail"].startswith("'steal' is not one of")
        missing = client.post("/api/v1/externallogin/github", json={})
        assert missing.json()["detail"] == "'kind' is a required property"
    no_csrf = httpx.post(f"{server.url}/api/v1/externallogin/github", json={"kind": "login"})
    assert no_csrf.status_code == 403


def test_detach_external_login(server: LiveServer, user, user_client) -> None:
    detached = user_client.post("/api/v1/detachexternal/github")
    assert detached.status_code == 200
    assert detached.json() == {"success": True}
    with bearer_client(server, issue_token(server, user.username, "user:read")) as reader:
        assert reader.post("/api/v1/detachexternal/github").status_code == 403
    with csrf_client(server) as anonymous:
        refused = anonymous.post("/api/v1/detachexternal/github")
        assert refused.status_code == 401
