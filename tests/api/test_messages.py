"""Global messages: read by everyone, posted and deleted by superusers, shared by replicas."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.server import LiveServer
from tests.support.sessions import cookie_session, csrf_client, session_client

FORBIDDEN_TEXT = (
    "You don't have the permission to access the requested resource. It is either "
    "read-protected or not readable by the server."
)


def _message(content: str, severity: str = "info", media_type: str = "text/plain") -> dict:
    return {"message": {"content": content, "media_type": media_type, "severity": severity}}


def _contents(client: httpx.Client) -> list[str]:
    response = client.get("/api/v1/messages")
    assert response.status_code == 200
    return [m["content"] for m in response.json()["messages"]]


def _find(client: httpx.Client, content: str) -> dict[str, Any]:
    return next(
        m for m in client.get("/api/v1/messages").json()["messages"] if m["content"] == content
    )


def test_superuser_posts_a_message_everyone_reads_and_deletes_it(
    server: LiveServer, admin, anon_client: httpx.Client
) -> None:
    content = "Maintenance **tonight** at 22:00 <script>alert(1)</script>"
    with session_client(server, admin.username, admin.password) as client:
        created = client.post(
            "/api/v1/messages", json=_message(content, "warning", "text/markdown")
        )
        assert created.status_code == 201
        assert created.content == b""
    message = _find(anon_client, content)
    assert set(message) == {"uuid", "content", "severity", "media_type"}
    assert message["severity"] == "warning"
    assert message["media_type"] == "text/markdown"
    assert len(message["uuid"]) == 36

    with session_client(server, admin.username, admin.password) as client:
        deleted = client.delete(f"/api/v1/message/{message['uuid']}")
        assert deleted.status_code == 204
        assert deleted.content == b""
        # Deleting it again, or a message that never existed, is not an error in Quay.
        assert client.delete(f"/api/v1/message/{message['uuid']}").status_code == 204
    assert content not in _contents(anon_client)


def test_superuser_token_needs_the_superuser_scope(server: LiveServer, admin, anon_client) -> None:
    with bearer_client(server, issue_token(server, admin.username, ALL_SCOPES)) as client:
        assert client.post("/api/v1/messages", json=_message("by token")).status_code == 201
    narrow = issue_token(server, admin.username, "user:admin repo:admin org:admin")
    with bearer_client(server, narrow) as client:
        refused = client.post("/api/v1/messages", json=_message("narrow token"))
        assert refused.status_code == 403
        assert refused.json()["error_type"] == "insufficient_scope"
        uuid = _find(anon_client, "by token")["uuid"]
        assert client.delete(f"/api/v1/message/{uuid}").status_code == 403
    assert "narrow token" not in _contents(anon_client)
    assert "by token" in _contents(anon_client)


def test_other_users_and_anonymous_callers_cannot_change_messages(
    server: LiveServer, admin, anon_client
) -> None:
    with bearer_client(server, issue_token(server, admin.username, ALL_SCOPES)) as client:
        client.post("/api/v1/messages", json=_message("keep me"))
    target = _find(anon_client, "keep me")["uuid"]
    someone = create_user(server)
    with session_client(server, someone.username, someone.password) as client:
        posted = client.post("/api/v1/messages", json=_message("from a user"))
        assert posted.status_code == 403
        assert posted.json() == {"message": FORBIDDEN_TEXT}
        removed = client.delete(f"/api/v1/message/{target}")
        assert removed.status_code == 403
        assert removed.json() == {"message": FORBIDDEN_TEXT}
    with csrf_client(server) as client:
        anonymous = client.post("/api/v1/messages", json=_message("from nobody"))
        assert anonymous.status_code == 401
        assert client.delete(f"/api/v1/message/{target}").status_code == 401
    # Without the CSRF token a browser session is refused before anything else.
    with httpx.Client(base_url=server.url) as client:
        assert client.post("/api/v1/messages", json=_message("forged")).status_code == 403
    contents = _contents(anon_client)
    assert "keep me" in contents
    assert not {"from a user", "from nobody", "forged"} & set(contents)


def test_an_old_login_must_sign_in_again(server: LiveServer, admin, anon_client) -> None:
    client, csrf = cookie_session(server, admin.username, login_age_s=3600)
    with client:
        response = client.post(
            "/api/v1/messages", json=_message("stale"), headers={"X-CSRF-Token": csrf}
        )
    assert response.status_code == 401
    assert response.json()["error_type"] == "fresh_login_required"
    assert "stale" not in _contents(anon_client)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "'message' is a required property"),
        ({"message": "hello"}, "'hello' is not of type 'object'"),
        ({"message": {"content": "x", "severity": "info"}}, "'media_type' is a required property"),
        (
            {"message": {"content": 5, "media_type": "text/plain", "severity": "info"}},
            "5 is not of type 'string'",
        ),
        (
            {"message": {"content": "x", "media_type": "text/html", "severity": "info"}},
            "'text/html' is not one of ['text/plain', 'text/markdown']",
        ),
        (
            {"message": {"content": "x", "media_type": "text/plain", "severity": "fatal"}},
            "'fatal' is not one of ['info', 'warning', 'error']",
        ),
    ],
)
def test_bad_messages_are_refused_with_quays_wording(
    server: LiveServer, admin, anon_client, body: dict, detail: str
) -> None:
    before = _contents(anon_client)
    with bearer_client(server, issue_token(server, admin.username, ALL_SCOPES)) as client:
        response = client.post("/api/v1/messages", json=body)
    assert response.status_code == 400
    assert response.json()["error_type"] == "invalid_request"
    assert response.json()["detail"] == detail
    assert _contents(anon_client) == before


def test_malformed_json_is_a_400_not_a_500(server: LiveServer, admin) -> None:
    with bearer_client(server, issue_token(server, admin.username, ALL_SCOPES)) as client:
        response = client.post(
            "/api/v1/messages", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400


def test_replicas_on_one_database_show_the_same_messages(server_factory) -> None:
    first = server_factory()
    shared = {
        "DB_URI": first.settings.DB_URI,
        "SECRET_KEY": first.settings.SECRET_KEY,
        "DATABASE_SECRET_KEY": first.settings.DATABASE_SECRET_KEY,
    }
    second = server_factory(shared)
    admin = create_user(first, "admin")
    with bearer_client(first, issue_token(first, admin.username, ALL_SCOPES)) as client:
        assert client.post("/api/v1/messages", json=_message("from replica one")).status_code == 201
    with httpx.Client(base_url=second.url) as reader:
        message = _find(reader, "from replica one")
    with bearer_client(second, issue_token(second, admin.username, ALL_SCOPES)) as client:
        assert client.delete(f"/api/v1/message/{message['uuid']}").status_code == 204
    with httpx.Client(base_url=first.url) as reader:
        assert "from replica one" not in _contents(reader)


def test_without_superusers_the_routes_do_not_exist(server_factory) -> None:
    live = server_factory({"FEATURE_SUPER_USERS": False})
    admin = create_user(live, "admin")
    with bearer_client(live, issue_token(live, admin.username, ALL_SCOPES)) as client:
        assert client.get("/api/v1/messages").json() == {"messages": []}
        assert client.post("/api/v1/messages", json=_message("x")).status_code == 404
        assert client.delete("/api/v1/message/abc").status_code == 404
        assert client.get("/api/v1/messages").json() == {"messages": []}
