"""Superuser user management: /api/v1/superuser/users/[{username}]."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.accounts import User
from tests.support.accounts import (
    ALL_SCOPES,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
    unique,
)
from tests.support.audit import log_entries
from tests.support.sessions import after_login_failure, csrf_client, signin, stale_session_cookie
from tests.support.teams import passwordless_user

BASE = "/api/v1/superuser/users/"


@pytest.fixture
def su(server, admin):
    with bearer_client(server, issue_token(server, admin.username, ALL_SCOPES)) as client:
        yield client


def _set_enabled(server, username: str, enabled: bool) -> None:
    with server.db() as session:
        session.scalar(select(User).where(User.username == username)).enabled = enabled


def test_list_users_shape_and_disabled_filter(server, admin, su) -> None:
    person = passwordless_user(server)
    off = passwordless_user(server)
    _set_enabled(server, off.username, False)
    users = {view["username"]: view for view in su.get(BASE).json()["users"]}
    assert users[person.username] == {
        "kind": "user",
        "name": person.username,
        "username": person.username,
        "email": person.email,
        "verified": True,
        "avatar": users[person.username]["avatar"],
        "super_user": False,
        "global_readonly_super_user": False,
        "enabled": True,
        "quotas": [],
        "quota_report": users[person.username]["quota_report"],
    }
    assert users[admin.username]["super_user"] is True
    assert users[off.username]["enabled"] is False
    enabled_only = su.get(BASE, params={"disabled": "false"}).json()["users"]
    assert off.username not in {view["username"] for view in enabled_only}
    assert all(view["enabled"] for view in enabled_only)
    assert su.get("/api/v1/superuser/users").status_code == 200


def test_list_users_pages_with_limit(server, su) -> None:
    for _ in range(3):
        passwordless_user(server)
    everyone = [view["username"] for view in su.get(BASE).json()["users"]]
    seen: list[str] = []
    params: dict[str, str] = {"limit": "2"}
    while True:
        page = su.get(BASE, params=params).json()
        assert len(page["users"]) <= 2
        seen.extend(view["username"] for view in page["users"])
        if "next_page" not in page:
            break
        params = {"limit": "2", "next_page": page["next_page"]}
    assert seen == everyone
    first = su.get(BASE, params={"limit": "2", "next_page": "garbage"}).json()
    assert [view["username"] for view in first["users"]] == everyone[:2]
    too_many = su.get(BASE, params={"limit": "101"})
    assert too_many.status_code == 400
    assert too_many.json()["detail"] == "Page limit cannot be above 100"
    not_int = su.get(BASE, params={"limit": "abc"})
    assert not_int.status_code == 400
    assert "limit" in not_int.json()["message"]


def test_superuser_endpoints_refuse_others(server, admin) -> None:
    person = passwordless_user(server)
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get(BASE).status_code == 401
        assert anonymous.get(f"{BASE}{person.username}").status_code == 401
    with bearer_client(server, issue_token(server, person.username, ALL_SCOPES)) as user:
        assert user.get(BASE).status_code == 403
        assert user.get(f"{BASE}{person.username}").status_code == 403
        assert user.put(f"{BASE}{person.username}", json={}).status_code == 403
        assert user.delete(f"{BASE}{person.username}").status_code == 403
        forbidden = user.post(BASE, json={"username": unique("x")})
        assert forbidden.status_code == 403
        assert forbidden.json()["error_type"] == "insufficient_scope"
        assert user.post(BASE, json={}).status_code == 400
    no_super_scope = "user:admin user:read org:admin repo:admin"
    with bearer_client(server, issue_token(server, admin.username, no_super_scope)) as client:
        assert client.get(BASE).status_code == 403


def test_create_user_with_generated_password(server, admin, su) -> None:
    name = unique("made")
    response = su.post(BASE, json={"username": name, "email": f"{name}@example.com"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["username"] == name
    assert body["email"] == f"{name}@example.com"
    assert len(body["password"]) == 32 and body["password"].isalnum()
    with csrf_client(server) as client:
        assert signin(client, name, body["password"]).status_code == 200
    with csrf_client(server) as client:
        assert signin(client, name, body["encrypted_password"]).status_code == 200
    assert log_entries(server, name, "user_create") == [
        {"email": f"{name}@example.com", "username": name, "superuser": admin.username}
    ]
    without_email = su.post(BASE, json={"username": unique("noemail")})
    assert without_email.status_code == 200
    assert without_email.json()["email"] is None


def test_create_user_errors(server, su) -> None:
    person = passwordless_user(server)
    org = create_organization(server, person)
    taken = su.post(BASE, json={"username": person.username})
    assert taken.status_code == 400
    assert taken.json() == {
        "message": f"Username has already been taken by user cannot be reused: {person.username}"
    }
    by_org = su.post(BASE, json={"username": org})
    assert by_org.json()["message"].startswith("Username has already been taken by an organization")
    bad = su.post(BASE, json={"username": "Bad Name"})
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("Invalid namespace Bad Name")
    used = su.post(BASE, json={"username": unique("mail"), "email": person.email})
    assert used.json() == {"message": f"Email has already been used: {person.email}"}
    missing = su.post(BASE, json={})
    assert missing.status_code == 400
    assert missing.json()["detail"] == "'username' is a required property"


def test_get_user(server, su) -> None:
    person = passwordless_user(server)
    view = su.get(f"{BASE}{person.username}").json()
    assert view["username"] == person.username and view["email"] == person.email
    assert view["super_user"] is False
    org = create_organization(server, person)
    for name in ("nosuchuser", org):
        response = su.get(f"{BASE}{name}")
        assert response.status_code == 404
        assert response.json()["error_type"] == "not_found"


def test_change_password_and_email(server, admin, su) -> None:
    person = create_user(server)
    response = su.put(f"{BASE}{person.username}", json={"password": "reset-by-admin"})
    assert response.status_code == 200
    assert response.json()["encrypted_password"]
    with csrf_client(server) as client:
        assert signin(client, person.username, person.password).status_code == 403
        renewed = after_login_failure(lambda: signin(client, person.username, "reset-by-admin"))
        assert renewed.status_code == 200
    new_email = f"{unique('new')}@example.com"
    response = su.put(f"{BASE}{person.username}", json={"email": new_email})
    assert response.json()["email"] == new_email
    assert "encrypted_password" not in response.json()
    assert su.get(f"{BASE}{person.username}").json()["email"] == new_email
    assert log_entries(server, person.username, "user_change_password") == [
        {"username": person.username, "superuser": admin.username}
    ]
    assert log_entries(server, person.username, "user_change_email") == [
        {"old_email": person.email, "email": new_email, "superuser": admin.username}
    ]


def test_change_is_all_or_nothing(server, su) -> None:
    person = create_user(server)
    other = passwordless_user(server)
    response = su.put(
        f"{BASE}{person.username}", json={"password": "shouldnotstick", "email": other.email}
    )
    assert response.status_code == 400
    assert response.json() == {"message": "E-mail address already used"}
    with csrf_client(server) as client:
        assert signin(client, person.username, person.password).status_code == 200
    weak = su.put(f"{BASE}{person.username}", json={"password": "short"})
    assert weak.status_code == 400
    assert weak.json()["message"].startswith("Invalid password")
    wrong_type = su.put(f"{BASE}{person.username}", json={"enabled": "no"})
    assert wrong_type.status_code == 400
    assert wrong_type.json()["detail"] == "'no' is not of type 'boolean'"


def test_disable_user(server, admin, su) -> None:
    person = create_user(server)
    response = su.put(f"{BASE}{person.username}", json={"enabled": False})
    assert response.status_code == 200
    assert response.json()["enabled"] is True
    assert su.get(f"{BASE}{person.username}").json()["enabled"] is False
    with csrf_client(server) as client:
        assert signin(client, person.username, person.password).json()["message"] == (
            "This user has been disabled. Please contact your administrator."
        )
    assert log_entries(server, person.username, "user_disable") == [
        {"username": person.username, "superuser": admin.username}
    ]
    su.put(f"{BASE}{person.username}", json={"enabled": True})
    with csrf_client(server) as client:
        assert signin(client, person.username, person.password).status_code == 200


def test_superusers_cannot_be_changed_or_deleted(admin, su) -> None:
    response = su.put(f"{BASE}{admin.username}", json={"enabled": False})
    assert response.status_code == 400
    assert response.json()["detail"] == "Cannot update a superuser"
    response = su.delete(f"{BASE}{admin.username}")
    assert response.status_code == 400
    assert response.json()["detail"] == "Cannot delete a superuser"
    assert su.put(f"{BASE}nosuchuser", json={}).status_code == 404
    assert su.delete(f"{BASE}nosuchuser").status_code == 404


def test_delete_user_even_sole_org_admin(server, su) -> None:
    person = create_user(server)
    create_organization(server, person)
    assert su.delete(f"{BASE}{person.username}").status_code == 204
    assert su.get(f"{BASE}{person.username}").status_code == 404
    with csrf_client(server) as client:
        assert signin(client, person.username, person.password).status_code == 403
    assert log_entries(server, person.username, "user_delete") == [{"username": person.username}]


def test_superuser_session_needs_fresh_login(server, admin) -> None:
    cookie = stale_session_cookie(server, admin.username, "freshcsrf")
    with httpx.Client(
        base_url=server.url, cookies={"_csrf_token": cookie}, headers={"X-CSRF-Token": "freshcsrf"}
    ) as client:
        response = client.get(BASE)
        assert response.status_code == 401
        assert response.json()["error_type"] == "fresh_login_required"
        verified = client.post("/api/v1/signin/verify", json={"password": admin.password})
        assert verified.status_code == 200
        assert client.get(BASE).status_code == 200


def test_global_readonly_superuser_reads_only(server_factory) -> None:
    live = server_factory({"GLOBAL_READONLY_SUPER_USERS": ["auditor"]})
    auditor = create_user(live, "auditor")
    person = passwordless_user(live)
    with bearer_client(live, issue_token(live, auditor.username, "user:read")) as client:
        views = {view["username"]: view for view in client.get(BASE).json()["users"]}
        assert views["auditor"]["global_readonly_super_user"] is True
        assert views["auditor"]["super_user"] is False
        assert client.get(f"{BASE}{person.username}").status_code == 200
        assert client.post(BASE, json={"username": unique("x")}).status_code == 403
        assert client.delete(f"{BASE}{person.username}").status_code == 403
        assert client.get("/api/v1/user/").json()["global_readonly_super_user"] is True
