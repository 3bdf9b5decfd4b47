"""Superuser tools: take ownership, the app-token audit and the configuration dump."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import select

from cargohold.db.models.accounts import AppSpecificToken, User
from tests.superuser.conftest import Callers, assert_api_error
from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
    unique,
)
from tests.support.audit import log_entries
from tests.support.registry import create_app_token, make_repository
from tests.support.server import LiveServer


def _take(client: httpx.Client, namespace: str) -> httpx.Response:
    return client.post(f"/api/v1/superuser/takeownership/{namespace}")


def test_take_ownership_of_an_organization_makes_the_superuser_an_owner(
    server: LiveServer, admin_client: httpx.Client, user: TestUser
) -> None:
    org = create_organization(server, user)
    assert admin_client.get(f"/api/v1/organization/{org}/members").status_code == 403
    taken = _take(admin_client, org)
    assert taken.status_code == 200
    assert taken.json() == {"namespace": org}
    members = admin_client.get(f"/api/v1/organization/{org}/members").json()["members"]
    assert {m["name"] for m in members} == {user.username, "admin"}
    # Taking it again changes nothing.
    assert _take(admin_client, org).status_code == 200
    entries = log_entries(server, "admin", "take_ownership")
    assert entries[-1]["namespace"] == org
    assert entries[-1]["was_user"] is False
    assert entries[-1]["superuser"] == "admin"


def test_take_ownership_of_a_user_turns_the_account_into_an_organization(
    server: LiveServer, admin_client: httpx.Client
) -> None:
    person = create_user(server, unique("former"))
    repo = make_repository(server, person.username, "kept", public=False)
    token = issue_token(server, person.username, ALL_SCOPES)
    app_token = create_app_token(server, person.username)
    with bearer_client(server, token) as before:
        assert before.get("/api/v1/user/").status_code == 200
    assert _take(admin_client, person.username).json() == {"namespace": person.username}
    org = admin_client.get(f"/api/v1/organization/{person.username}")
    assert org.status_code == 200
    assert org.json()["is_admin"] is True
    assert admin_client.get(f"/api/v1/repository/{repo}").status_code == 200
    # Nobody can act as the old account any more: no token, no app token, no password.
    with bearer_client(server, token) as after:
        assert after.get("/api/v1/user/").status_code == 401
    v2 = httpx.get(
        f"{server.url}/v2/auth",
        params={"service": server.host},
        auth=("$app", app_token),
    )
    assert v2.status_code == 401
    signin = httpx.post(
        f"{server.url}/api/v1/signin",
        json={"username": person.username, "password": person.password},
    )
    assert signin.status_code in (400, 401, 403)
    with server.db() as session:
        row = session.scalar(select(User).where(User.username == person.username))
        assert row.organization is True and row.password_hash is None
        assert (
            session.scalar(select(AppSpecificToken.id).where(AppSpecificToken.user_id == row.id))
            is None
        )
    entry = log_entries(server, "admin", "take_ownership")[-1]
    assert entry["namespace"] == person.username and entry["was_user"] is True


def test_take_ownership_refusals(
    server: LiveServer, admin_client: httpx.Client, user_client: httpx.Client, user: TestUser
) -> None:
    org = create_organization(server, user)
    refused = _take(admin_client, "admin")
    assert_api_error(refused, 400, "invalid_request", "Cannot take ownership of a superuser")
    assert_api_error(_take(admin_client, unique("nobody")), 404, "not_found")
    assert_api_error(_take(user_client, org), 403, "insufficient_scope")
    # Anonymous writes stop at the CSRF check, as in Quay.
    anonymous = _take(httpx.Client(base_url=server.url), org)
    assert anonymous.status_code == 403
    assert anonymous.json() == {"error": "CSRF token was invalid or missing."}
    with server.db() as session:
        still_user = session.scalar(select(User).where(User.username == user.username))
        assert still_user.organization is False


def test_read_only_superuser_cannot_take_ownership(full_callers: Callers) -> None:
    org = create_organization(full_callers.server, full_callers.plain_user)
    assert_api_error(_take(full_callers.auditor, org), 403, "insufficient_scope")


def test_app_token_audit_lists_every_users_tokens_without_codes(full_callers: Callers) -> None:
    server = full_callers.server
    owner = create_user(server, unique("tokens"))
    code = create_app_token(server, owner.username)
    soon = create_app_token(server, owner.username)
    with server.db() as session:
        soon_row = session.scalar(
            select(AppSpecificToken).where(AppSpecificToken.token_name == soon[:60])
        )
        soon_row.expiration = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        soon_uuid = soon_row.uuid
    for client in (full_callers.admin, full_callers.auditor):
        listed = client.get("/api/v1/superuser/apptokens")
        assert listed.status_code == 200
        body = listed.json()
        assert body["only_expiring"] is False
        uuids = {token["uuid"] for token in body["tokens"]}
        assert soon_uuid in uuids and len(uuids) >= 2
        assert set(body["tokens"][0]) == {
            "uuid",
            "title",
            "last_accessed",
            "created",
            "expiration",
        }
        assert code not in listed.text and soon not in listed.text
    expiring = full_callers.auditor.get("/api/v1/superuser/apptokens", params={"expiring": "true"})
    assert expiring.json()["only_expiring"] is True
    assert [token["uuid"] for token in expiring.json()["tokens"]] == [soon_uuid]
    assert_api_error(
        full_callers.plain.get("/api/v1/superuser/apptokens"), 403, "insufficient_scope"
    )
    assert_api_error(full_callers.anon.get("/api/v1/superuser/apptokens"), 401, "invalid_token")


def test_app_token_audit_needs_full_access(admin_client: httpx.Client) -> None:
    assert_api_error(admin_client.get("/api/v1/superuser/apptokens"), 403, "insufficient_scope")


def test_config_dump_is_off_by_default(admin_client: httpx.Client) -> None:
    assert_api_error(admin_client.get("/api/v1/superuser/config"), 403, "insufficient_scope")


def test_config_dump_masks_every_secret(server_factory) -> None:
    mail_password = "mail-" + unique("pw")
    env_secret = "env-" + unique("secret")
    live = server_factory(
        {
            "FEATURE_SUPERUSER_CONFIGDUMP": True,
            "MAIL_PASSWORD": mail_password,
            "GLOBAL_READONLY_SUPER_USERS": ["auditor"],
            "SOME_FUTURE_OPTIONS": {"client_secret": "nested-" + mail_password, "url": "x"},
        },
        env={"CARGOHOLD_SECURITY_SCANNER_V4_PSK": env_secret, "CARGOHOLD_REGISTRY_TITLE": "Hold"},
    )
    create_user(live, "admin")
    create_user(live, "auditor")
    plain = create_user(live)
    settings = live.settings
    with bearer_client(live, issue_token(live, "admin", ALL_SCOPES)) as admin:
        dumped = admin.get("/api/v1/superuser/config")
    assert dumped.status_code == 200
    body = dumped.json()
    assert set(body) == {"config", "warning", "env", "schema"}
    config = body["config"]
    assert config["SERVER_HOSTNAME"] == live.host
    assert config["REGISTRY_TITLE"] == "Hold"
    assert config["FEATURE_SUPERUSER_CONFIGDUMP"] is True
    assert config["SUPER_USERS"] == ["admin"]
    for name in ("MAIL_PASSWORD", "SECRET_KEY", "DATABASE_SECRET_KEY", "DB_URI"):
        assert config[name] == "**********", name
    assert body["warning"]["SOME_FUTURE_OPTIONS"] == {"client_secret": "**********", "url": "x"}
    assert body["env"]["CARGOHOLD_SECURITY_SCANNER_V4_PSK"] == "**********"
    assert body["env"]["CARGOHOLD_REGISTRY_TITLE"] == "Hold"
    assert "PATH" not in body["env"]
    assert "SERVER_HOSTNAME" in body["schema"]["properties"]
    for secret in (
        mail_password,
        env_secret,
        settings.SECRET_KEY,
        settings.DATABASE_SECRET_KEY,
        settings.DB_URI,
    ):
        assert secret not in dumped.text
    with bearer_client(live, issue_token(live, "auditor", ALL_SCOPES)) as auditor:
        assert auditor.get("/api/v1/superuser/config").status_code == 200
    with bearer_client(live, issue_token(live, plain.username, ALL_SCOPES)) as stranger:
        refused = stranger.get("/api/v1/superuser/config")
    assert_api_error(refused, 403, "insufficient_scope")
    assert_api_error(httpx.get(live.url + "/api/v1/superuser/config"), 401, "invalid_token")


def test_take_ownership_never_leaves_an_organization_without_admin(
    server: LiveServer, admin_client: httpx.Client
) -> None:
    person = create_user(server, unique("soleadmin"))
    org = create_organization(server, person)
    refused = _take(admin_client, person.username)
    assert refused.status_code == 400
    assert refused.json()["message"] == (
        f"Cannot convert {person.username} as it is the only admin for organizations: {org}"
    )
    with server.db() as session:
        row = session.scalar(select(User).where(User.username == person.username))
        assert row.organization is False and row.password_hash is not None
