"""/api/v1/user/, /api/v1/users/{username}, sign-in, sign-out, CSRF and first-user initialization."""

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
from tests.support.server import LiveServer
from tests.support.sessions import (
    after_login_failure,
    csrf_client,
    session_client,
    signin,
    stale_session_cookie,
)

CSRF_BODY = {"message": "CSRF token was invalid or missing."}
FULL_VIEW_KEYS = {
    "anonymous",
    "username",
    "avatar",
    "can_create_repo",
    "is_me",
    "verified",
    "email",
    "logins",
    "invoice_email",
    "invoice_email_address",
    "preferred_namespace",
    "tag_expiration_s",
    "prompts",
    "company",
    "family_name",
    "given_name",
    "location",
    "is_free_account",
    "has_password_set",
    "organizations",
}


def token_client(server: LiveServer, username: str, scopes: str = ALL_SCOPES) -> httpx.Client:
    return bearer_client(server, issue_token(server, username, scopes))


# GET /api/v1/user/


def test_get_user_anonymous_is_401_with_session_required(anon_client) -> None:
    response = anon_client.get("/api/v1/user/")
    assert response.status_code == 401
    body = response.json()
    assert body["error_type"] == "invalid_token"
    assert body["detail"] == "Requires authentication"
    assert body["session_required"] is False
    assert body["type"].endswith("/api/v1/error/invalid_token")


def test_get_user_full_view_for_admin_token(server, user, user_client) -> None:
    org = create_organization(server, user)
    response = user_client.get("/api/v1/user")
    assert response.status_code == 200
    view = response.json()
    assert set(view) >= FULL_VIEW_KEYS
    assert view["username"] == user.username
    assert view["email"] == user.email
    assert view["anonymous"] is False
    assert view["tag_expiration_s"] == 14 * 86400
    assert view["has_password_set"] is True
    assert view["avatar"]["kind"] == "user"
    assert len(view["avatar"]["hash"]) == 64
    assert "super_user" not in view
    [org_view] = view["organizations"]
    assert org_view["name"] == org
    assert org_view["is_org_admin"] is True
    assert org_view["can_create_repo"] is True
    assert org_view["avatar"]["kind"] == "org"


def test_get_user_read_scope_sees_only_organizations(server, user) -> None:
    with token_client(server, user.username, "user:read") as client:
        view = client.get("/api/v1/user/").json()
    assert view["username"] == user.username
    assert "organizations" in view
    assert "email" not in view


def test_get_user_without_user_scope_is_401(server, user) -> None:
    with token_client(server, user.username, "repo:read") as client:
        response = client.get("/api/v1/user/")
    assert response.status_code == 401


def test_invalid_bearer_token_is_anonymous(server) -> None:
    with bearer_client(server, "X" * 40) as client:
        assert client.get("/api/v1/user/").status_code == 401
        assert client.put("/api/v1/user/", json={}).json() == CSRF_BODY


def test_superuser_view_has_super_user_flag(server, admin) -> None:
    with token_client(server, admin.username) as client:
        assert client.get("/api/v1/user/").json()["super_user"] is True
    with token_client(server, admin.username, "user:admin") as client:
        assert "super_user" not in client.get("/api/v1/user/").json()


# GET /api/v1/users/{username}


def test_get_user_information(server, user, user_client) -> None:
    other = create_user(server)
    response = user_client.get(f"/api/v1/users/{other.username}")
    assert response.status_code == 200
    assert set(response.json()) == {"anonymous", "username", "avatar"}
    mine = user_client.get(f"/api/v1/users/{user.username}").json()
    assert mine["email"] == user.email


def test_get_user_information_anonymous_and_missing(server, user, anon_client) -> None:
    assert anon_client.get(f"/api/v1/users/{user.username}").json()["username"] == user.username
    org = create_organization(server, user)
    for name in ("nosuchuser", org):
        response = anon_client.get(f"/api/v1/users/{name}")
        assert response.status_code == 404
        assert response.json()["message"].startswith("The requested URL was not found")


def test_superuser_sees_super_user_false_on_others(server, admin, user) -> None:
    with token_client(server, admin.username) as client:
        assert client.get(f"/api/v1/users/{user.username}").json()["super_user"] is False


# Sessions, CSRF and sign-in


def test_session_flow_signin_get_and_signout(server, user) -> None:
    with csrf_client(server) as client:
        response = signin(client, user.username, user.password)
        assert response.status_code == 200
        assert response.json() == {"success": True}
        assert response.headers["X-Next-CSRF-Token"]
        assert client.get("/api/v1/user/").json()["username"] == user.username
        assert client.post("/api/v1/signout").json() == {"success": True}
        assert client.get("/api/v1/user/").status_code == 401
    assert log_entries(server, user.username, "login_success")[0]["type"] == "quayauth"
    assert len(log_entries(server, user.username, "logout_success")) == 1


def test_signout_ends_every_session(server, user) -> None:
    with (
        session_client(server, user.username, user.password) as first,
        session_client(server, user.username, user.password) as second,
    ):
        assert second.get("/api/v1/user/").status_code == 200
        assert first.post("/api/v1/signout").status_code == 200
        assert second.get("/api/v1/user/").status_code == 401


def test_signin_requires_csrf(server, user, anon_client) -> None:
    body = {"username": user.username, "password": user.password}
    response = anon_client.post("/api/v1/signin", json=body)
    assert response.status_code == 403
    assert response.json() == CSRF_BODY
    with csrf_client(server) as client:
        response = client.post("/api/v1/signin", json=body, headers={"X-CSRF-Token": "wrong"})
        assert response.status_code == 403
        assert response.json() == CSRF_BODY


def test_session_mutation_needs_csrf_token(server, user) -> None:
    with session_client(server, user.username, user.password) as client:
        token = client.headers.pop("X-CSRF-Token")
        response = client.put("/api/v1/user/", json={"invoice_email": True})
        assert response.status_code == 403
        assert response.json() == CSRF_BODY
        response = client.put(
            "/api/v1/user/", json={"invoice_email": True}, params={"_csrf_token": token}
        )
        assert response.status_code == 200
        assert response.json()["invoice_email"] is True


def test_signin_wrong_password_and_unknown_user(server, user) -> None:
    expected = {
        "needsEmailVerification": False,
        "invalidCredentials": True,
        "message": "Invalid Username or Password",
    }
    with csrf_client(server) as client:
        for name, password in ((user.username, "wrongpassword"), ("nobodyhere", "whatever1")):
            response = signin(client, name, password)
            assert response.status_code == 403
            assert response.json() == expected


def test_signin_by_email(server, user) -> None:
    with csrf_client(server) as client:
        assert signin(client, user.email, user.password).status_code == 200
        assert client.get("/api/v1/user/").json()["username"] == user.username


def test_signin_disabled_and_unverified_users(server) -> None:
    disabled = create_user(server)
    unverified = create_user(server)
    with server.db() as session:
        session.scalar(select(User).where(User.username == disabled.username)).enabled = False
        session.scalar(select(User).where(User.username == unverified.username)).verified = False
    with csrf_client(server) as client:
        response = signin(client, disabled.username, disabled.password)
        assert response.status_code == 403
        assert response.json()["message"] == (
            "This user has been disabled. Please contact your administrator."
        )
        response = signin(client, unverified.username, unverified.password)
        assert response.status_code == 403
        assert response.json() == {
            "needsEmailVerification": True,
            "invalidCredentials": False,
            "message": None,
        }


def test_signin_bad_body(server) -> None:
    with csrf_client(server) as client:
        response = client.post("/api/v1/signin", json={"username": "x"})
        assert response.status_code == 400
        assert response.json()["detail"] == "'password' is a required property"
        response = client.post(
            "/api/v1/signin", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert "message" in response.json()


def test_disabled_user_session_is_rejected(server) -> None:
    person = create_user(server)
    with session_client(server, person.username, person.password) as client:
        with server.db() as session:
            session.scalar(select(User).where(User.username == person.username)).enabled = False
        assert client.get("/api/v1/user/").status_code == 401


def test_fresh_login_required_then_verify(server) -> None:
    person = create_user(server)
    cookie = stale_session_cookie(server, person.username, "stalecsrf")
    with httpx.Client(
        base_url=server.url,
        cookies={"_csrf_token": cookie},
        headers={"X-CSRF-Token": "stalecsrf"},
    ) as client:
        assert client.get("/api/v1/user/").status_code == 200
        response = client.put("/api/v1/user/", json={"invoice_email": True})
        assert response.status_code == 401
        assert response.json()["error_type"] == "fresh_login_required"
        response = client.post("/api/v1/signin/verify", json={"password": "wrongpassword"})
        assert response.status_code == 403
        assert response.json()["invalidCredentials"] is True
        response = after_login_failure(
            lambda: client.post("/api/v1/signin/verify", json={"password": person.password})
        )
        assert response.status_code == 200
        client.headers["X-CSRF-Token"] = response.headers["X-Next-CSRF-Token"]
        assert client.put("/api/v1/user/", json={"invoice_email": True}).status_code == 200


def test_csrf_token_endpoint_keeps_token_for_the_session(anon_client) -> None:
    first = anon_client.get("/csrf_token").json()["csrf_token"]
    assert anon_client.get("/csrf_token").json()["csrf_token"] == first


# POST /api/v1/user/


def test_create_user_signs_in_and_logs(server) -> None:
    name = unique("new")
    with csrf_client(server) as client:
        response = client.post(
            "/api/v1/user/",
            json={"username": name, "password": "longenough1", "email": f"{name}@example.com"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["username"] == name
        assert response.json()["verified"] is True
        client.headers["X-CSRF-Token"] = response.headers["X-Next-CSRF-Token"]
        assert client.get("/api/v1/user/").json()["email"] == f"{name}@example.com"
    assert log_entries(server, name, "user_create") == [
        {"email": f"{name}@example.com", "username": name}
    ]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            {"username": "a", "password": "longenough1"},
            "Invalid namespace a: Namespace must be between 2 and 255 characters in length",
        ),
        (
            {"username": "auserName", "password": "longenough1"},
            "Invalid namespace auserName: Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$",
        ),
        (
            {"username": "shortpass", "password": "short"},
            "Invalid password, password must be at least 8 characters and contain no whitespace.",
        ),
        ({"username": "nopassword"}, "'password' is a required property"),
        ({"username": 5, "password": "longenough1"}, "5 is not of type 'string'"),
        (
            {"username": "bademail", "password": "longenough1", "email": "nope"},
            "Invalid email address: nope",
        ),
    ],
)
def test_create_user_bad_input(server, body, detail) -> None:
    with csrf_client(server) as client:
        response = client.post("/api/v1/user/", json=body)
    assert response.status_code == 400
    assert response.json()["error_type"] == "invalid_request"
    assert response.json()["detail"] == detail
    if isinstance(body.get("username"), str):
        with server.db() as session:
            assert session.scalar(select(User).where(User.username == body["username"])) is None


def test_create_user_duplicates(server, user) -> None:
    org = create_organization(server, user)
    with csrf_client(server) as client:
        response = client.post(
            "/api/v1/user/", json={"username": user.username, "password": "longenough1"}
        )
        assert response.json()["detail"] == "The username already exists"
        response = client.post("/api/v1/user/", json={"username": org, "password": "longenough1"})
        assert response.status_code == 400
        assert "taken by an organization" in response.json()["detail"]
        response = client.post(
            "/api/v1/user/",
            json={"username": unique("dup"), "password": "longenough1", "email": user.email},
        )
        assert response.json()["detail"] == f"Email has already been used: {user.email}"


def test_create_user_without_csrf_is_refused(anon_client) -> None:
    response = anon_client.post(
        "/api/v1/user/", json={"username": "nocsrf", "password": "longenough1"}
    )
    assert response.status_code == 403
    assert response.json() == CSRF_BODY


# PUT /api/v1/user/


def test_change_password_ends_other_sessions(server) -> None:
    person = create_user(server)
    with (
        session_client(server, person.username, person.password) as caller,
        session_client(server, person.username, person.password) as other,
    ):
        response = caller.put("/api/v1/user/", json={"password": "brand-new-pass"})
        assert response.status_code == 200
        caller.headers["X-CSRF-Token"] = response.headers["X-Next-CSRF-Token"]
        assert caller.get("/api/v1/user/").status_code == 200
        assert other.get("/api/v1/user/").status_code == 401
        assert caller.put("/api/v1/user/", json={"invoice_email": True}).status_code == 200
    with csrf_client(server) as client:
        assert signin(client, person.username, person.password).status_code == 403
        renewed = after_login_failure(lambda: signin(client, person.username, "brand-new-pass"))
        assert renewed.status_code == 200
    assert len(log_entries(server, person.username, "account_change_password")) == 1


def test_change_password_rejects_weak_password(server, user, user_client) -> None:
    response = user_client.put("/api/v1/user/", json={"password": "has space 123"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid password")
    with csrf_client(server) as client:
        assert signin(client, user.username, user.password).status_code == 200


def test_change_tag_expiration(server, user, user_client) -> None:
    response = user_client.put("/api/v1/user/", json={"tag_expiration_s": 12345})
    assert response.status_code == 400
    assert response.json() == {"message": "Invalid tag expiration option"}
    response = user_client.put("/api/v1/user/", json={"tag_expiration_s": 86400})
    assert response.status_code == 200
    assert response.json()["tag_expiration_s"] == 86400
    assert log_entries(server, user.username, "user_change_tag_expiration") == [
        {"tag_expiration": 86400}
    ]
    response = user_client.put("/api/v1/user/", json={"tag_expiration_s": -1})
    assert response.status_code == 400
    assert response.json()["detail"] == "-1 is less than the minimum of 0"


def test_change_email_and_invoicing(server, user, user_client) -> None:
    other = create_user(server)
    response = user_client.put("/api/v1/user/", json={"email": other.email})
    assert response.status_code == 400
    assert response.json()["detail"] == "E-mail address already used"
    new_email = f"{unique('mail')}@example.org"
    response = user_client.put(
        "/api/v1/user/",
        json={
            "email": new_email,
            "invoice_email": True,
            "invoice_email_address": "bills@example.org",
        },
    )
    assert response.status_code == 200
    view = response.json()
    assert view["email"] == new_email
    assert view["invoice_email"] is True
    assert view["invoice_email_address"] == "bills@example.org"
    assert log_entries(server, user.username, "user_change_email") == [
        {"email": new_email, "old_email": user.email}
    ]
    assert len(log_entries(server, user.username, "user_change_invoicing")) == 2


def test_change_user_rename_ignored_without_feature(user, user_client) -> None:
    response = user_client.put("/api/v1/user/", json={"username": "someothername"})
    assert response.status_code == 200
    assert response.json()["username"] == user.username


def test_change_user_permissions(server, user, anon_client) -> None:
    with csrf_client(server) as client:
        response = client.put("/api/v1/user/", json={})
        assert response.status_code == 401
    with token_client(server, user.username, "user:read") as client:
        response = client.put("/api/v1/user/", json={})
        assert response.status_code == 403
        assert response.json()["error_type"] == "insufficient_scope"
    with token_client(server, user.username, "user:admin") as client:
        assert client.put("/api/v1/user/", json={"invoice_email": "yes"}).status_code == 400


# DELETE /api/v1/user/


def test_delete_user(server) -> None:
    person = create_user(server)
    token = issue_token(server, person.username, ALL_SCOPES)
    with bearer_client(server, token) as client:
        assert client.delete("/api/v1/user/").status_code == 204
        assert client.get("/api/v1/user/").status_code == 401
    with csrf_client(server) as client:
        assert signin(client, person.username, person.password).status_code == 403
        response = client.post(
            "/api/v1/user/", json={"username": person.username, "password": "longenough1"}
        )
        assert response.json()["detail"] == "Username is not available"
    [entry] = log_entries(server, person.username, "user_delete", keep_oauth=True)
    assert entry["username"] == person.username
    assert isinstance(entry["oauth_token_id"], int)


def test_delete_user_sole_org_admin_refused(server, user, user_client) -> None:
    org = create_organization(server, user)
    response = user_client.delete("/api/v1/user/")
    assert response.status_code == 400
    assert response.json() == {
        "message": f"Cannot delete {user.username} as you are the only admin for organizations: {org}"
    }
    assert user_client.get("/api/v1/user/").status_code == 200


def test_delete_user_scope_and_anonymous(server, user) -> None:
    with token_client(server, user.username, "user:read") as client:
        assert client.delete("/api/v1/user/").status_code == 403
    with csrf_client(server) as client:
        assert client.delete("/api/v1/user/").status_code == 401


# /api/v1/error/{error_type}


def test_error_description(anon_client) -> None:
    response = anon_client.get("/api/v1/error/not_found")
    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "not_found"
    assert body["description"] == "The resource was not found."
    assert body["type"].endswith("/api/v1/error/not_found")
    missing = anon_client.get("/api/v1/error/nope")
    assert missing.status_code == 404
    assert missing.json()["error_type"] == "not_found"


# POST /api/v1/user/initialize


def test_initialize_refused_on_non_empty_database(server, user, anon_client) -> None:
    response = anon_client.post(
        "/api/v1/user/initialize", json={"username": "first", "password": "longenough1"}
    )
    assert response.status_code == 400
    assert response.json() == {"message": "Cannot initialize user in a non-empty database"}


def test_initialize_first_user_with_token(server_factory) -> None:
    live = server_factory()
    with httpx.Client(base_url=live.url, timeout=30) as client:
        response = client.post(
            "/api/v1/user/initialize", json={"username": "a", "password": "longenough1"}
        )
        assert response.status_code == 400
        assert response.json()["message"].startswith(
            "Failed to initialize user: Invalid namespace a"
        )
        response = client.post("/api/v1/user/initialize", json={"username": "admin"})
        assert response.json() == {
            "message": "Failed to initialize user: 'password' is a required property"
        }
        response = client.post(
            "/api/v1/user/initialize",
            json={
                "username": "admin",
                "password": "longenough1",
                "email": "admin@example.com",
                "access_token": True,
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["username"] == "admin"
        assert body["email"] == "admin@example.com"
        assert body["encrypted_password"]
        assert len(body["access_token"]) == 40
        again = client.post(
            "/api/v1/user/initialize", json={"username": "second", "password": "longenough1"}
        )
        assert again.status_code == 400
    with bearer_client(live, body["access_token"]) as client:
        view = client.get("/api/v1/user/").json()
        assert view["username"] == "admin"
        assert view["super_user"] is True
    with csrf_client(live) as client:
        assert signin(client, "admin", body["encrypted_password"]).status_code == 200


def test_user_creation_and_initialize_disabled(server_factory) -> None:
    live = server_factory({"FEATURE_USER_CREATION": False, "FEATURE_USER_INITIALIZE": False})
    body = {"username": "admin", "password": "longenough1"}
    response = httpx.post(live.url + "/api/v1/user/initialize", json=body)
    assert response.status_code == 400
    assert response.json() == {
        "message": "Cannot initialize user, FEATURE_USER_INITIALIZE is False"
    }
    with csrf_client(live) as client:
        assert client.post("/api/v1/user/", json=body).status_code == 404


# POST /api/v1/user/clientkey


def test_client_key_is_a_password_substitute(server) -> None:
    person = create_user(server)
    with token_client(server, person.username) as client:
        wrong = client.post("/api/v1/user/clientkey", json={"password": "notmypassword"})
        assert wrong.status_code == 400
        assert wrong.json()["detail"] == "Invalid Username or Password"
        response = after_login_failure(
            lambda: client.post("/api/v1/user/clientkey", json={"password": person.password})
        )
        assert response.status_code == 200
        key = response.json()["key"]
        assert person.password not in key
    with csrf_client(server) as client:
        assert signin(client, person.username, key).status_code == 200
    assert len(log_entries(server, person.username, "user_generate_client_key")) == 1
    with token_client(server, person.username, "user:read") as client:
        assert client.post("/api/v1/user/clientkey", json={"password": "x"}).status_code == 403
