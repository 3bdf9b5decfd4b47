"""App-specific tokens: /api/v1/user/apptoken[/{uuid}]."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from sqlalchemy import select

from cargohold.auth.credentials import CredentialsError, verify_app_token
from cargohold.db.models.accounts import AppSpecificToken
from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.audit import log_entries
from tests.support.sessions import csrf_client, stale_session_cookie
from tests.support.teams import passwordless_user

CODE_RE = re.compile(r"^[A-Z0-9]{120}$")


@pytest.fixture
def person(server):
    return passwordless_user(server)


@pytest.fixture
def client(server, person):
    with bearer_client(server, issue_token(server, person.username, ALL_SCOPES)) as client:
        yield client


def _expire(server, token_uuid: str, delta: dt.timedelta) -> None:
    with server.db() as session:
        token = session.scalar(select(AppSpecificToken).where(AppSpecificToken.uuid == token_uuid))
        token.expiration = dt.datetime.now(dt.UTC) + delta


def test_app_token_lifecycle(server, person, client) -> None:
    response = client.post("/api/v1/user/apptoken", json={"title": "laptop"})
    assert response.status_code == 200
    token = response.json()["token"]
    assert token["title"] == "laptop"
    assert CODE_RE.match(token["token_code"])
    assert token["expiration"] is None and token["last_accessed"] is None
    assert token["created"].endswith("-0000")

    listing = client.get("/api/v1/user/apptoken").json()
    assert listing["only_expiring"] is None
    assert [item["uuid"] for item in listing["tokens"]] == [token["uuid"]]
    assert "token_code" not in listing["tokens"][0]

    fetched = client.get(f"/api/v1/user/apptoken/{token['uuid']}")
    assert fetched.status_code == 200
    assert fetched.json()["token"]["token_code"] == token["token_code"]

    assert client.delete(f"/api/v1/user/apptoken/{token['uuid']}").status_code == 204
    missing = client.get(f"/api/v1/user/apptoken/{token['uuid']}")
    assert missing.status_code == 404
    assert missing.json()["error_type"] == "not_found"
    assert client.delete(f"/api/v1/user/apptoken/{token['uuid']}").status_code == 404

    expected = {"app_specific_token_title": "laptop", "app_specific_token": token["uuid"]}
    assert log_entries(server, person.username, "create_app_specific_token") == [expected]
    assert log_entries(server, person.username, "revoke_app_specific_token") == [expected]


def test_app_token_code_is_a_registry_password(server, person, client) -> None:
    token = client.post("/api/v1/user/apptoken", json={"title": "ci"}).json()["token"]
    with server.db() as session:
        record = session.scalar(
            select(AppSpecificToken).where(AppSpecificToken.uuid == token["uuid"])
        )
        assert token["token_code"][60:] not in record.token_secret_encrypted
        assert record.token_secret_hash != token["token_code"][60:]
        context = verify_app_token(session, server.settings, token["token_code"])
        assert context.user.username == person.username
        code = token["token_code"]
        wrong = code[:-1] + ("A" if code[-1] != "A" else "B")
        with pytest.raises(CredentialsError):
            verify_app_token(session, server.settings, wrong)


def test_expiring_filter_and_expired_tokens(server, client) -> None:
    forever = client.post("/api/v1/user/apptoken", json={"title": "forever"}).json()["token"]
    soon = client.post("/api/v1/user/apptoken", json={"title": "soon"}).json()["token"]
    gone = client.post("/api/v1/user/apptoken", json={"title": "gone"}).json()["token"]
    _expire(server, soon["uuid"], dt.timedelta(hours=1))
    _expire(server, gone["uuid"], dt.timedelta(hours=-1))
    expiring = client.get("/api/v1/user/apptoken?expiring=true").json()
    assert expiring["only_expiring"] is True
    assert [item["uuid"] for item in expiring["tokens"]] == [soon["uuid"]]
    everything = client.get("/api/v1/user/apptoken?expiring=false").json()
    assert everything["only_expiring"] is False
    assert {item["uuid"] for item in everything["tokens"]} == {
        forever["uuid"],
        soon["uuid"],
        gone["uuid"],
    }
    assert client.get(f"/api/v1/user/apptoken/{gone['uuid']}").status_code == 404
    assert client.delete(f"/api/v1/user/apptoken/{gone['uuid']}").status_code == 204


def test_tokens_are_private_to_their_owner(server, client) -> None:
    token = client.post("/api/v1/user/apptoken", json={"title": "mine"}).json()["token"]
    other = passwordless_user(server)
    with bearer_client(server, issue_token(server, other.username, ALL_SCOPES)) as other_client:
        assert other_client.get("/api/v1/user/apptoken").json()["tokens"] == []
        assert other_client.get(f"/api/v1/user/apptoken/{token['uuid']}").status_code == 404
        assert other_client.delete(f"/api/v1/user/apptoken/{token['uuid']}").status_code == 404
    assert client.get(f"/api/v1/user/apptoken/{token['uuid']}").status_code == 200


def test_app_token_bad_body(client) -> None:
    for body, detail in (
        ({}, "'title' is a required property"),
        ({"title": 3}, "3 is not of type 'string'"),
    ):
        response = client.post("/api/v1/user/apptoken", json=body)
        assert response.status_code == 400
        assert response.json()["detail"] == detail
    assert client.get("/api/v1/user/apptoken").json()["tokens"] == []


def test_app_token_access_rules(server, person) -> None:
    with csrf_client(server) as anonymous:
        assert anonymous.get("/api/v1/user/apptoken").status_code == 401
        assert anonymous.post("/api/v1/user/apptoken", json={"title": "x"}).status_code == 401
    with bearer_client(server, issue_token(server, person.username, "user:read")) as reader:
        response = reader.post("/api/v1/user/apptoken", json={"title": "x"})
        assert response.status_code == 403
        assert reader.get("/api/v1/user/apptoken").status_code == 403


def test_app_token_needs_fresh_login_for_sessions(server) -> None:
    person = create_user(server)
    cookie = stale_session_cookie(server, person.username, "csrfvalue")
    with httpx.Client(
        base_url=server.url, cookies={"_csrf_token": cookie}, headers={"X-CSRF-Token": "csrfvalue"}
    ) as client:
        assert client.get("/api/v1/user/apptoken").status_code == 200
        response = client.post("/api/v1/user/apptoken", json={"title": "x"})
        assert response.status_code == 401
        assert response.json()["error_type"] == "fresh_login_required"
        verified = client.post("/api/v1/signin/verify", json={"password": person.password})
        client.headers["X-CSRF-Token"] = verified.headers["X-Next-CSRF-Token"]
        assert client.post("/api/v1/user/apptoken", json={"title": "x"}).status_code == 200
