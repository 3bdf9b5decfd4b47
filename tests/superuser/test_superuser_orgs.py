"""Superuser organization administration, and quota fields on organization and user JSON."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import select

from cargohold.db.models.accounts import User
from cargohold.db.models.audit import LogEntry
from cargohold.db.models.quota import NamespaceQuota
from cargohold.db.models.registry import Repository
from tests.superuser.conftest import assert_api_error
from tests.support.accounts import TestUser, create_organization, unique
from tests.support.server import LiveServer

LIST = "/api/v1/superuser/organizations/"


def _all_names(client: httpx.Client) -> list[str]:
    return [org["name"] for org in client.get(LIST).json()["organizations"]]


def test_list_shows_every_organization_with_quota_fields_and_pages(
    server: LiveServer, admin_client: httpx.Client, user: TestUser
) -> None:
    names = [create_organization(server, user) for _ in range(3)]
    admin_client.post(
        f"/api/v1/superuser/organization/{names[0]}/quota", json={"limit_bytes": 9000}
    )
    listed = {org["name"]: org for org in admin_client.get(LIST).json()["organizations"]}
    assert set(names) <= set(listed)
    first = listed[names[0]]
    assert first["avatar"]["kind"] == "org"
    assert first["avatar"]["name"] == names[0]
    assert first["quotas"] == [{"id": first["quotas"][0]["id"], "limit_bytes": 9000, "limits": []}]
    assert first["quota_report"] == {
        "quota_bytes": 0,
        "configured_quota": 9000,
        "running_backfill": "waiting",
        "backfill_status": "waiting",
    }
    assert listed[names[1]]["quotas"] == []
    assert listed[names[1]]["quota_report"]["configured_quota"] is None

    everything = _all_names(admin_client)
    paged: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = admin_client.get(LIST.rstrip("/"), params=params).json()
        assert len(page["organizations"]) <= 2
        paged += [org["name"] for org in page["organizations"]]
        if "next_page" not in page:
            break
        params = {"limit": 2, "next_page": page["next_page"]}
    assert paged == everything

    too_many = admin_client.get(LIST, params={"limit": 101})
    assert_api_error(too_many, 400, "invalid_request", "Page limit cannot be above 100")
    not_a_number = admin_client.get(LIST, params={"limit": "many"})
    assert not_a_number.status_code == 400
    assert "limit" in not_a_number.json()["message"]
    # An unreadable page token means the first page.
    restart = admin_client.get(LIST, params={"limit": 1, "next_page": "garbage"}).json()
    assert [org["name"] for org in restart["organizations"]] == everything[:1]


def test_rename_renames_robots_and_ignores_other_fields(
    server: LiveServer, admin_client: httpx.Client, user: TestUser
) -> None:
    old = create_organization(server, user)
    new = unique("renamed")
    with server.db() as session:
        session.add(User(username=f"{old}+builder", robot=True, email=None))
    response = admin_client.put(f"/api/v1/superuser/organizations/{old}", json={"name": new})
    assert response.status_code == 200
    assert response.json()["name"] == new
    assert response.json()["avatar"]["kind"] == "org"
    with server.db() as session:
        names = set(session.scalars(select(User.username)).all())
        logs = [
            json.loads(row.metadata_json)
            for row in session.scalars(
                select(LogEntry).where(LogEntry.kind == "org_change_name").order_by(LogEntry.id)
            )
        ]
    assert new in names and old not in names
    assert f"{new}+builder" in names and f"{old}+builder" not in names
    assert {"old_name": old, "new_name": new, "superuser": "admin"}.items() <= logs[-1].items()

    ignored = admin_client.put(
        f"/api/v1/superuser/organizations/{new}", json={"email": "x@example.com"}
    )
    assert ignored.status_code == 200
    assert ignored.json()["name"] == new
    assert ignored.json()["email"] != "x@example.com"

    taken = admin_client.put(f"/api/v1/superuser/organizations/{new}", json={"name": user.username})
    assert_api_error(
        taken, 400, "invalid_request", "A user or organization with this name already exists"
    )
    invalid = admin_client.put(f"/api/v1/superuser/organizations/{new}", json={"name": "Bad Name"})
    assert invalid.status_code == 400
    assert invalid.json()["message"].startswith("Invalid username Bad Name")
    assert_api_error(
        admin_client.put(f"/api/v1/superuser/organizations/{old}", json={"name": "x1"}),
        404,
        "not_found",
    )
    assert new in _all_names(admin_client)

    # A user's name is not an organization: Quay's data-model error, and the user is untouched.
    on_user = admin_client.put(
        f"/api/v1/superuser/organizations/{user.username}", json={"name": unique("stolen")}
    )
    assert on_user.status_code == 400
    assert on_user.json() == {"message": f"Organization does not exist: {user.username}"}
    with server.db() as session:
        assert user.username in set(session.scalars(select(User.username)).all())


def test_delete_makes_the_organization_unreachable(
    server: LiveServer,
    admin_client: httpx.Client,
    user: TestUser,
    user_client: httpx.Client,
) -> None:
    org = create_organization(server, user)
    with server.db() as session:
        org_id = session.scalar(select(User.id).where(User.username == org))
        session.add(Repository(namespace_user_id=org_id, name="app"))
    admin_client.post(f"/api/v1/superuser/organization/{org}/quota", json={"limit_bytes": 10})
    assert_api_error(
        user_client.delete(f"/api/v1/superuser/organizations/{org}"), 403, "insufficient_scope"
    )
    deleted = admin_client.delete(f"/api/v1/superuser/organizations/{org}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert org not in _all_names(admin_client)
    assert user_client.get(f"/api/v1/organization/{org}").status_code == 404
    assert_api_error(
        admin_client.get(f"/api/v1/superuser/organization/{org}/quota"), 404, "not_found"
    )
    with server.db() as session:
        assert (
            session.scalar(select(NamespaceQuota).where(NamespaceQuota.namespace_id == org_id))
            is None
        )
        repo = session.scalar(select(Repository).where(Repository.namespace_user_id == org_id))
        assert repo.deleted is True
        [entry] = [
            row
            for row in session.scalars(select(LogEntry).where(LogEntry.kind == "org_delete"))
            if json.loads(row.metadata_json).get("namespace") == org
        ]
        assert entry.account_id == org_id
    again = admin_client.delete(f"/api/v1/superuser/organizations/{org}")
    assert_api_error(again, 404, "not_found")


def test_superuser_org_endpoints_refuse_other_callers(
    server: LiveServer, user: TestUser, user_client: httpx.Client, anon_client: httpx.Client
) -> None:
    org = create_organization(server, user)
    assert_api_error(anon_client.get(LIST), 401, "invalid_token")
    assert_api_error(user_client.get(LIST), 403, "insufficient_scope")
    assert_api_error(
        user_client.put(f"/api/v1/superuser/organizations/{org}", json={"name": "zz9"}),
        403,
        "insufficient_scope",
    )
    assert anon_client.delete(f"/api/v1/superuser/organizations/{org}").status_code in (401, 403)
    assert user_client.get(f"/api/v1/organization/{org}").status_code == 200


def test_quota_fields_on_organization_and_user_json(
    server: LiveServer, admin_client: httpx.Client, user: TestUser, user_client: httpx.Client
) -> None:
    org = create_organization(server, user)
    admin_client.post(f"/api/v1/superuser/organization/{org}/quota", json={"limit_bytes": 4096})
    view = user_client.get(f"/api/v1/organization/{org}").json()
    assert view["quotas"][0]["limit_bytes"] == 4096
    assert view["quota_report"]["configured_quota"] == 4096
    me = user_client.get("/api/v1/user/").json()
    assert me["quotas"] == []
    assert me["quota_report"]["quota_bytes"] == 0
