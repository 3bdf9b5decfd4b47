"""The quota API: superuser paths, /organization/{org}/quota with limits, /user/quota."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.audit import LogEntry
from tests.superuser.conftest import Callers, assert_api_error
from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.server import LiveServer


def _quota_list(client: httpx.Client, family: str, namespace: str) -> list:
    response = client.get(f"/api/v1/superuser/{family}/{namespace}/quota")
    assert response.status_code == 200, response.text
    return response.json()


def _logs(server: LiveServer, kind: str, namespace: str) -> list[dict]:
    with server.db() as session:
        rows = session.scalars(
            select(LogEntry).where(LogEntry.kind == kind).order_by(LogEntry.id)
        ).all()
        metas = [json.loads(row.metadata_json) for row in rows]
    # Token bookkeeping added to every entry is not what these tests look at.
    return [
        {k: v for k, v in meta.items() if not k.startswith("oauth_token") and k != "request_id"}
        for meta in metas
        if meta.get("namespace") == namespace
    ]


# --- superuser paths ----------------------------------------------------------------------


@pytest.mark.parametrize("family", ["users", "organization"])
def test_superuser_manages_an_org_quota_on_either_path(
    server: LiveServer, admin_client: httpx.Client, user: TestUser, family: str
) -> None:
    org = create_organization(server, user)
    other = "organization" if family == "users" else "users"
    created = admin_client.post(
        f"/api/v1/superuser/{family}/{org}/quota", json={"limit_bytes": 5000}
    )
    assert created.status_code == 201
    assert created.json() == "Created"

    [quota] = _quota_list(admin_client, other, org)
    assert quota == {
        "id": quota["id"],
        "limit_bytes": 5000,
        "limit": "4.9 KiB",
        "default_config": False,
        "limits": [],
        "default_config_exists": False,
    }
    assert isinstance(quota["id"], int)

    duplicate = admin_client.post(f"/api/v1/superuser/{other}/{org}/quota", json={"limit": "1G"})
    assert_api_error(duplicate, 400, "invalid_request", f"Quota for '{org}' already exists")

    changed = admin_client.put(
        f"/api/v1/superuser/{other}/{org}/quota/{quota['id']}", json={"limit": "5G"}
    )
    assert changed.status_code == 200
    assert changed.json()["limit_bytes"] == 5_000_000_000
    assert isinstance(changed.json()["limit_bytes"], int)
    unchanged = admin_client.put(f"/api/v1/superuser/{family}/{org}/quota/{quota['id']}", json={})
    assert unchanged.status_code == 200
    assert unchanged.json()["limit_bytes"] == 5_000_000_000

    deleted = admin_client.delete(f"/api/v1/superuser/{family}/{org}/quota/{quota['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert _quota_list(admin_client, family, org) == []
    again = admin_client.delete(f"/api/v1/superuser/{family}/{org}/quota/{quota['id']}")
    assert_api_error(again, 404, "not_found")


def test_superuser_quota_for_a_user_namespace_is_visible_to_that_user(
    server: LiveServer, admin_client: httpx.Client, user: TestUser, user_client: httpx.Client
) -> None:
    created = admin_client.post(
        f"/api/v1/superuser/organization/{user.username}/quota", json={"limit": "512Mi"}
    )
    assert created.status_code == 201
    [quota] = _quota_list(admin_client, "users", user.username)
    assert quota["limit_bytes"] == 536_870_912
    assert quota["limit"] == "512.0 MiB"

    own = user_client.get("/api/v1/user/quota")
    assert own.status_code == 200
    assert own.json() == [quota]
    assert user_client.get(f"/api/v1/user/quota/{quota['id']}").json() == quota
    assert user_client.get(f"/api/v1/user/quota/{quota['id']}/limit").json() == []
    missing_limit = user_client.get(f"/api/v1/user/quota/{quota['id']}/limit/999999")
    assert_api_error(missing_limit, 404, "not_found")

    stranger = create_user(server)
    with bearer_client(server, issue_token(server, stranger.username, ALL_SCOPES)) as client:
        assert client.get("/api/v1/user/quota").json() == []
        assert_api_error(client.get(f"/api/v1/user/quota/{quota['id']}"), 404, "not_found")
        assert_api_error(client.get(f"/api/v1/user/quota/{quota['id']}/limit"), 404, "not_found")
    with bearer_client(server, issue_token(server, user.username, "repo:read")) as client:
        assert_api_error(client.get("/api/v1/user/quota"), 403, "insufficient_scope")


def test_user_quota_limit_item_returns_the_parent_quota(
    full_access_server: LiveServer, full_callers: Callers
) -> None:
    person = create_user(full_access_server)
    admin = full_callers.admin
    assert (
        admin.post(f"/api/v1/superuser/users/{person.username}/quota", json={"limit_bytes": 6000})
    ).status_code == 201
    [quota] = admin.get(f"/api/v1/superuser/users/{person.username}/quota").json()
    base = f"/api/v1/organization/{person.username}/quota/{quota['id']}"
    assert (
        admin.post(base + "/limit", json={"type": "Reject", "threshold_percent": 90}).status_code
        == 201
    )
    [limit] = admin.get(base + "/limit").json()
    assert limit == {"id": limit["id"], "type": "Reject", "limit_percent": 90}
    with bearer_client(
        full_access_server, issue_token(full_access_server, person.username, ALL_SCOPES)
    ) as client:
        item = client.get(f"/api/v1/user/quota/{quota['id']}/limit/{limit['id']}")
        assert item.status_code == 200
        assert item.json()["id"] == quota["id"]
        assert item.json()["limits"] == [limit]
        assert client.get(f"/api/v1/user/quota/{quota['id']}/limit").json() == [limit]


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({}, 400, None),
        ({"limit_bytes": 5000, "limit": "5G"}, 400, None),
        ({"limit_bytes": 1.5}, 400, None),
        ({"limit_bytes": "5000"}, 400, None),
        ({"limit_bytes": True}, 400, None),
        ({"limit": "1.5GiB"}, 400, None),
        ({"limit_bytes": -1}, 400, "Invalid quota size limit value: '-1'"),
        ({"limit_bytes": 0}, 400, "Invalid quota size limit value: '0'"),
        ({"limit_bytes": 2**63}, 400, "Unsupported quota size limit."),
        ({"limit": "100B"}, 400, None),
        ({"limit": "1ZiB"}, 400, None),
    ],
)
def test_superuser_quota_create_rejects_bad_bodies_and_changes_nothing(
    server: LiveServer, admin_client: httpx.Client, user: TestUser, body, status, detail
) -> None:
    org = create_organization(server, user)
    response = admin_client.post(f"/api/v1/superuser/organization/{org}/quota", json=body)
    assert_api_error(response, status, "invalid_request", detail)
    assert _quota_list(admin_client, "organization", org) == []


def test_superuser_quota_change_rejects_bad_bodies(
    server: LiveServer, admin_client: httpx.Client, user: TestUser
) -> None:
    org = create_organization(server, user)
    admin_client.post(f"/api/v1/superuser/users/{org}/quota", json={"limit_bytes": 5000})
    [quota] = _quota_list(admin_client, "users", org)
    path = f"/api/v1/superuser/users/{org}/quota/{quota['id']}"
    for body in ({"limit_bytes": 1, "limit": "1G"}, {"limit_bytes": 5, "extra": 1}, {"x": 1}):
        assert_api_error(admin_client.put(path, json=body), 400, "invalid_request")
    negative = admin_client.put(path, json={"limit_bytes": -7})
    assert_api_error(negative, 400, "invalid_request", "Invalid quota size limit value: '-7'")
    malformed = admin_client.put(
        path, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert "message" in malformed.json()
    assert _quota_list(admin_client, "users", org)[0]["limit_bytes"] == 5000


def test_superuser_quota_paths_404_for_unknown_namespaces_and_quotas(
    server: LiveServer, admin_client: httpx.Client, user: TestUser
) -> None:
    base = "/api/v1/superuser/organization/nosuchnamespace/quota"
    assert_api_error(admin_client.get(base), 404, "not_found")
    assert_api_error(admin_client.post(base, json={"limit_bytes": 10}), 404, "not_found")
    assert_api_error(admin_client.put(base + "/1", json={}), 404, "not_found")
    assert_api_error(admin_client.delete(base + "/1"), 404, "not_found")
    org = create_organization(server, user)
    admin_client.post(f"/api/v1/superuser/users/{org}/quota", json={"limit_bytes": 10})
    other = create_organization(server, user)
    [quota] = _quota_list(admin_client, "users", org)
    # A quota id of another namespace is not found through this one.
    assert_api_error(
        admin_client.put(f"/api/v1/superuser/users/{other}/quota/{quota['id']}", json={}),
        404,
        "not_found",
    )
    assert_api_error(
        admin_client.delete(f"/api/v1/superuser/users/{other}/quota/abc"), 404, "not_found"
    )


def test_superuser_quota_paths_refuse_other_callers(
    server: LiveServer, admin_client: httpx.Client, user: TestUser, user_client, anon_client
) -> None:
    org = create_organization(server, user)
    base = f"/api/v1/superuser/users/{org}/quota"
    assert_api_error(anon_client.get(base), 401, "invalid_token")
    assert_api_error(user_client.get(base), 403, "insufficient_scope")
    # Anonymous writes stop at the CSRF check or at authentication, never reach the data.
    assert anon_client.post(base, json={"limit_bytes": 10}).status_code in (401, 403)
    assert_api_error(user_client.post(base, json={"limit_bytes": 10}), 403, "insufficient_scope")
    # The body is validated before the permission check, after fresh login.
    assert_api_error(user_client.post(base, json={}), 400, "invalid_request")
    admin_client.post(base, json={"limit_bytes": 10})
    [quota] = _quota_list(admin_client, "users", org)
    assert_api_error(user_client.put(f"{base}/{quota['id']}", json={}), 403, "insufficient_scope")
    assert_api_error(user_client.delete(f"{base}/{quota['id']}"), 403, "insufficient_scope")
    assert anon_client.delete(f"{base}/{quota['id']}").status_code in (401, 403)
    # A superuser token without the super:user scope is an ordinary caller.
    with bearer_client(server, issue_token(server, "admin", "user:admin org:admin")) as client:
        assert_api_error(client.get(base), 403, "insufficient_scope")
    assert _quota_list(admin_client, "users", org)[0]["limit_bytes"] == 10


# --- /organization/{org}/quota ----------------------------------------------------------


def test_org_quota_writes_need_full_access(
    server: LiveServer, admin_client: httpx.Client, user: TestUser, user_client: httpx.Client
) -> None:
    org = create_organization(server, user)
    response = admin_client.post(f"/api/v1/organization/{org}/quota", json={"limit_bytes": 10})
    assert_api_error(response, 403, "insufficient_scope")
    owner = user_client.post(f"/api/v1/organization/{org}/quota", json={"limit_bytes": 10})
    assert_api_error(owner, 403, "insufficient_scope")
    # Members read; a superuser without full access who is not a member may not.
    assert user_client.get(f"/api/v1/organization/{org}/quota").json() == []
    assert_api_error(
        admin_client.get(f"/api/v1/organization/{org}/quota"), 403, "insufficient_scope"
    )


def test_org_quota_lifecycle_with_full_access(
    full_access_server: LiveServer, full_callers: Callers
) -> None:
    admin, auditor = full_callers.admin, full_callers.auditor
    owner = create_user(full_access_server)
    org = create_organization(full_access_server, owner)
    base = f"/api/v1/organization/{org}/quota"

    default = admin.get(base)
    assert default.json() == [
        {
            "id": None,
            "limit_bytes": 107374182400,
            "limit": "100.0 GiB",
            "default_config": True,
            "limits": [],
            "default_config_exists": True,
        }
    ]
    created = admin.post(base, json={"limit": "200M"})
    assert created.status_code == 201
    assert _logs(full_access_server, "org_create_quota", org) == [
        {"namespace": org, "limit_bytes": 200_000_000, "limit": "190.7 MiB"}
    ]
    [quota] = auditor.get(base).json()
    assert quota["limit_bytes"] == 200_000_000
    assert quota["default_config_exists"] is True
    assert auditor.get(f"{base}/{quota['id']}").json() == quota

    exists = admin.post(base, json={"limit_bytes": 5})
    assert_api_error(
        exists, 400, "invalid_request", f"Organization quota for '{org}' already exists"
    )
    assert_api_error(auditor.post(base, json={"limit_bytes": 5}), 403, "insufficient_scope")

    changed = admin.put(f"{base}/{quota['id']}", json={"limit_bytes": 300_000_000})
    assert changed.json()["limit_bytes"] == 300_000_000
    [change_log] = _logs(full_access_server, "org_change_quota", org)
    assert change_log["previous_limit_bytes"] == 200_000_000
    assert change_log["limit_bytes"] == 300_000_000

    deleted = admin.delete(f"{base}/{quota['id']}")
    assert deleted.status_code == 204
    [delete_log] = _logs(full_access_server, "org_delete_quota", org)
    assert delete_log["quota_id"] == quota["id"]
    assert delete_log["limit_bytes"] == 300_000_000
    assert_api_error(admin.get(f"{base}/{quota['id']}"), 404, "not_found")


def test_org_quota_read_permissions(full_access_server: LiveServer, full_callers: Callers) -> None:
    owner = create_user(full_access_server)
    org = create_organization(full_access_server, owner)
    base = f"/api/v1/organization/{org}/quota"
    assert_api_error(full_callers.anon.get(base), 401, "invalid_token")
    assert_api_error(full_callers.plain.get(base), 403, "insufficient_scope")
    # Permission comes before existence: outsiders cannot probe names.
    assert_api_error(
        full_callers.plain.get("/api/v1/organization/nosuchorg/quota"), 403, "insufficient_scope"
    )
    assert_api_error(
        full_callers.admin.get("/api/v1/organization/nosuchorg/quota"), 404, "not_found"
    )
    # A user's name is not an organization here.
    assert_api_error(
        full_callers.admin.get(f"/api/v1/organization/{owner.username}/quota"), 404, "not_found"
    )
    with bearer_client(
        full_access_server, issue_token(full_access_server, owner.username, ALL_SCOPES)
    ) as client:
        assert client.get(base).status_code == 200
    # Writes validate the body first, then the caller.
    assert_api_error(full_callers.plain.post(base, json={}), 400, "invalid_request")
    assert full_callers.anon.post(base, json={"limit_bytes": 1}).status_code in (401, 403)
    assert admin_default_only(full_callers.admin.get(base).json())


def admin_default_only(quotas: list[dict]) -> bool:
    return [quota["default_config"] for quota in quotas] == [True]


def test_quota_limits(full_access_server: LiveServer, full_callers: Callers) -> None:
    admin, auditor = full_callers.admin, full_callers.auditor
    owner = create_user(full_access_server)
    org = create_organization(full_access_server, owner)
    admin.post(f"/api/v1/organization/{org}/quota", json={"limit_bytes": 3000})
    [quota] = admin.get(f"/api/v1/organization/{org}/quota").json()
    base = f"/api/v1/organization/{org}/quota/{quota['id']}/limit"

    assert admin.post(base, json={"type": "warning", "threshold_percent": 80}).status_code == 201
    duplicate = admin.post(base, json={"type": "Warning", "threshold_percent": 80})
    assert_api_error(duplicate, 400, "invalid_request", "Quota limit already exists")
    bad_type = admin.post(base, json={"type": "undefinedtype", "threshold_percent": 60})
    assert bad_type.status_code == 400
    assert bad_type.json() == {"message": "Quota type must be one of [Warning, Reject]"}
    too_high = admin.post(base, json={"type": "Reject", "threshold_percent": 101})
    assert too_high.json() == {"message": "Quota limit threshold must be between 1 and 100"}
    zero = admin.post(base, json={"type": "Reject", "threshold_percent": 0})
    assert_api_error(
        zero, 400, "invalid_request", "Quota limit threshold must be between 1 and 100"
    )
    missing = admin.post(base, json={"type": "Reject"})
    assert_api_error(missing, 400, "invalid_request", "'threshold_percent' is a required property")
    assert admin.post(base, json={"type": "reject", "threshold_percent": 60}).status_code == 201
    assert admin.post(base, json={"type": "Reject", "threshold_percent": 100}).status_code == 201

    limits = auditor.get(base).json()
    assert [(item["type"], item["limit_percent"]) for item in limits] == [
        ("Warning", 80),
        ("Reject", 60),
        ("Reject", 100),
    ]
    warning = limits[0]
    assert auditor.get(f"{base}/{warning['id']}").json() == warning
    assert_api_error(full_callers.plain.get(base), 403, "insufficient_scope")
    assert_api_error(
        full_callers.plain.post(base, json={"type": "Reject", "threshold_percent": 5}),
        403,
        "insufficient_scope",
    )

    changed = admin.put(f"{base}/{warning['id']}", json={"threshold_percent": 90})
    assert changed.status_code == 200
    assert changed.json()["id"] == quota["id"]
    assert changed.json()["limits"][0] == {
        "id": warning["id"],
        "type": "Warning",
        "limit_percent": 90,
    }
    [change_log] = _logs(full_access_server, "org_change_quota_limit", org)
    assert change_log["threshold_percent"] == 90
    assert change_log["previous_threshold_percent"] == 80
    bad = admin.put(f"{base}/{warning['id']}", json={"type": "undefinedtype"})
    assert bad.json() == {"message": "Quota type must be one of [Warning, Reject]"}

    [create_log, *_] = _logs(full_access_server, "org_create_quota_limit", org)
    assert create_log == {"namespace": org, "type": "warning", "threshold_percent": 80}

    other_org = create_organization(full_access_server, owner)
    admin.post(f"/api/v1/organization/{other_org}/quota", json={"limit_bytes": 3000})
    [other_quota] = admin.get(f"/api/v1/organization/{other_org}/quota").json()
    foreign = admin.get(
        f"/api/v1/organization/{other_org}/quota/{other_quota['id']}/limit/{warning['id']}"
    )
    assert foreign.status_code == 400
    assert foreign.json() == {"message": ""}
    assert_api_error(admin.get(f"{base}/99999999"), 404, "not_found")

    assert admin.delete(f"{base}/{limits[1]['id']}").status_code == 204
    [delete_log] = _logs(full_access_server, "org_delete_quota_limit", org)
    assert delete_log == {
        "namespace": org,
        "limit_id": limits[1]["id"],
        "type": "Reject",
        "threshold_percent": 60,
    }
    assert [item["id"] for item in admin.get(base).json()] == [warning["id"], limits[2]["id"]]
