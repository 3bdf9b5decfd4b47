"""Audit log listings: user, organization, repository and superuser logs, and their aggregates."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.accounts import User
from cargohold.db.models.audit import LogEntry
from tests.support.accounts import ALL_SCOPES, bearer_client, issue_token
from tests.support.teams import create_repository, grant_user, org_world, passwordless_user

BAD_REQUEST = {
    "message": "The browser (or proxy) sent a request that this server could not understand."
}


def _ids(server, *names: str) -> list[int]:
    with server.db() as session:
        return [session.scalar(select(User.id).where(User.username == name)) for name in names]


def add_entries(
    server,
    *,
    namespace: str,
    kind: str,
    count: int = 1,
    performer: str | None = None,
    repository_id: int | None = None,
    when: dt.datetime | None = None,
) -> None:
    namespace_id = _ids(server, namespace)[0]
    performer_id = _ids(server, performer)[0] if performer else None
    with server.db() as session:
        for index in range(count):
            session.add(
                LogEntry(
                    kind=kind,
                    account_id=namespace_id,
                    performer_id=performer_id,
                    repository_id=repository_id,
                    ip="10.0.0.1",
                    metadata_json=json.dumps({"n": index}),
                    datetime=when or dt.datetime.now(dt.UTC),
                )
            )


@pytest.fixture
def person(server):
    return passwordless_user(server)


@pytest.fixture
def client(server, person):
    with bearer_client(server, issue_token(server, person.username, ALL_SCOPES)) as client:
        yield client


def test_user_logs_show_actions_with_performer(server, person, client) -> None:
    client.put("/api/v1/user/robots/logged")
    body = client.get("/api/v1/user/logs").json()
    assert body["start_time"].endswith("-0000") and body["end_time"].endswith("-0000")
    [entry] = [log for log in body["logs"] if log["kind"] == "create_robot"]
    assert entry["metadata"]["robot"] == "logged"
    assert "oauth_token_id" in entry["metadata"]
    assert entry["ip"] == "127.0.0.1"
    assert entry["datetime"].endswith("-0000")
    assert entry["performer"]["name"] == person.username
    assert entry["performer"]["is_robot"] is False
    assert entry["performer"]["avatar"]["kind"] == "user"
    assert "namespace" not in entry
    assert "next_page" not in body


def test_log_window(server, person, client) -> None:
    add_entries(
        server,
        namespace=person.username,
        kind="user_change_email",
        when=dt.datetime(2017, 1, 9, 23, 0, tzinfo=dt.UTC),
    )
    add_entries(
        server,
        namespace=person.username,
        kind="user_change_email",
        when=dt.datetime(2017, 1, 10, 0, 30, tzinfo=dt.UTC),
    )
    body = client.get("/api/v1/user/logs?starttime=12/01/2016&endtime=1/09/2017").json()
    assert body["start_time"] == "Thu, 01 Dec 2016 00:00:00 -0000"
    assert body["end_time"] == "Tue, 10 Jan 2017 00:00:00 -0000"
    assert [log["datetime"] for log in body["logs"]] == ["Mon, 09 Jan 2017 23:00:00 -0000"]
    assert "performer" not in body["logs"][0]
    backwards = client.get("/api/v1/user/logs?starttime=01/09/2017&endtime=12/01/2016")
    assert backwards.status_code == 400
    assert backwards.json() == BAD_REQUEST
    default = client.get("/api/v1/user/logs?starttime=garbage").json()
    assert default["logs"] == []


def test_log_paging_newest_first(server, person, client) -> None:
    base = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    for minute in range(45):
        add_entries(
            server,
            namespace=person.username,
            kind="user_change_invoicing",
            when=base + dt.timedelta(minutes=minute),
        )
    seen: list[str] = []
    pages = 0
    params: dict[str, str] = {}
    while True:
        body = client.get("/api/v1/user/logs", params=params).json()
        pages += 1
        assert len(body["logs"]) <= 20
        seen.extend(log["datetime"] for log in body["logs"])
        if "next_page" not in body:
            break
        params = {"next_page": body["next_page"]}
    assert pages == 3
    assert len(seen) == 45 == len(set(seen))
    parsed = [dt.datetime.strptime(value, "%a, %d %b %Y %H:%M:%S -0000") for value in seen]
    assert parsed == sorted(parsed, reverse=True)
    first = client.get("/api/v1/user/logs", params={"next_page": "not-a-token"}).json()
    assert [log["datetime"] for log in first["logs"]] == seen[:20]


def test_entries_with_equal_times_page_without_loss(server, person, client) -> None:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    add_entries(
        server, namespace=person.username, kind="user_change_invoicing", count=25, when=when
    )
    first = client.get("/api/v1/user/logs").json()
    second = client.get("/api/v1/user/logs", params={"next_page": first["next_page"]}).json()
    numbers = [log["metadata"]["n"] for log in first["logs"] + second["logs"]]
    assert sorted(numbers) == list(range(25))


def test_user_logs_performer_filter_and_service_keys(server, person, client) -> None:
    other = passwordless_user(server)
    add_entries(
        server, namespace=person.username, kind="user_change_email", performer=other.username
    )
    add_entries(
        server, namespace=person.username, kind="user_change_email", performer=person.username
    )
    add_entries(server, namespace=person.username, kind="service_key_create")
    everything = client.get("/api/v1/user/logs").json()["logs"]
    assert {log["kind"] for log in everything} == {"user_change_email"}
    mine = client.get("/api/v1/user/logs", params={"performer": other.username}).json()["logs"]
    assert [log["performer"]["name"] for log in mine] == [other.username]
    nobody = client.get("/api/v1/user/logs", params={"performer": "nosuchperson"}).json()
    assert nobody["logs"] == []


def test_user_logs_access(server, person) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/api/v1/user/logs").status_code == 401
        assert anonymous.get("/api/v1/user/aggregatelogs").status_code == 401
    with bearer_client(server, issue_token(server, person.username, "user:read")) as reader:
        assert reader.get("/api/v1/user/logs").status_code == 403


def test_aggregate_logs(server, person, client) -> None:
    day = dt.datetime(2020, 3, 4, 10, 0, tzinfo=dt.UTC)
    add_entries(server, namespace=person.username, kind="create_robot", count=3, when=day)
    add_entries(server, namespace=person.username, kind="delete_robot", when=day)
    add_entries(
        server, namespace=person.username, kind="create_robot", when=day + dt.timedelta(days=1)
    )
    body = client.get("/api/v1/user/aggregatelogs?starttime=03/01/2020&endtime=03/10/2020").json()
    assert body == {
        "aggregated": [
            {"kind": "create_robot", "count": 3, "datetime": "Wed, 04 Mar 2020 00:00:00 -0000"},
            {"kind": "delete_robot", "count": 1, "datetime": "Wed, 04 Mar 2020 00:00:00 -0000"},
            {"kind": "create_robot", "count": 1, "datetime": "Thu, 05 Mar 2020 00:00:00 -0000"},
        ]
    }
    too_long = client.get("/api/v1/user/aggregatelogs?starttime=01/01/2020&endtime=03/10/2020")
    assert too_long.status_code == 400
    assert too_long.json() == {"message": "Invalid date range for logs"}


def test_organization_logs(server) -> None:
    with org_world(server) as world:
        world.client("owner").put(f"/api/v1/organization/{world.org}/robots/orgbot")
        body = world.client("owner").get(f"/api/v1/organization/{world.org}/logs").json()
        assert [log["kind"] for log in body["logs"]] == ["create_robot"]
        assert body["logs"][0]["performer"]["name"] == world.owner.username
        aggregated = world.client("owner").get(f"/api/v1/organization/{world.org}/aggregatelogs")
        assert aggregated.json()["aggregated"][0]["count"] == 1
        for who in ("reader", "outsider"):
            response = world.client(who).get(f"/api/v1/organization/{world.org}/logs")
            assert response.status_code == 403
        assert (
            world.client("anonymous").get(f"/api/v1/organization/{world.org}/logs").status_code
            == 401
        )
        assert (
            world.client("outsider").get("/api/v1/organization/nosuchorg/logs").status_code == 403
        )
        with bearer_client(
            server, issue_token(server, world.owner.username, "repo:admin user:admin")
        ) as scoped:
            assert scoped.get(f"/api/v1/organization/{world.org}/logs").status_code == 403


def test_repository_logs(server) -> None:
    with org_world(server) as world:
        repo_id = create_repository(server, world.org, "app")
        create_repository(server, world.org, "other")
        grant_user(server, world.org, "app", world.reader.username, "read")
        add_entries(
            server,
            namespace=world.org,
            kind="push_repo",
            repository_id=repo_id,
            performer=world.robot,
        )
        add_entries(server, namespace=world.org, kind="org_create_team")
        owner = world.client("owner")
        body = owner.get(f"/api/v1/repository/{world.org}/app/logs").json()
        assert [log["kind"] for log in body["logs"]] == ["push_repo"]
        assert body["logs"][0]["performer"]["is_robot"] is True
        assert body["logs"][0]["performer"]["avatar"]["kind"] == "robot"
        assert owner.get(f"/api/v1/repository/{world.org}/other/logs").json()["logs"] == []
        assert (
            owner.get(f"/api/v1/repository/{world.org}/app/aggregatelogs").json()["aggregated"][0][
                "kind"
            ]
            == "push_repo"
        )
        missing = owner.get(f"/api/v1/repository/{world.org}/missing/logs")
        assert missing.status_code == 404
        assert (
            world.client("reader").get(f"/api/v1/repository/{world.org}/app/logs").status_code
            == 403
        )
        assert (
            world.client("outsider").get(f"/api/v1/repository/{world.org}/missing/logs").status_code
            == 403
        )
        assert (
            world.client("anonymous").get(f"/api/v1/repository/{world.org}/app/logs").status_code
            == 401
        )


def test_superuser_logs(server, admin, person) -> None:
    add_entries(
        server, namespace=person.username, kind="service_key_create", performer=admin.username
    )
    with bearer_client(server, issue_token(server, admin.username, ALL_SCOPES)) as su:
        body = su.get("/api/v1/superuser/logs").json()
        entries = [log for log in body["logs"] if log["kind"] == "service_key_create"]
        assert entries[0]["namespace"] == {
            "kind": "user",
            "name": person.username,
            "avatar": entries[0]["namespace"]["avatar"],
        }
        aggregated = su.get("/api/v1/superuser/aggregatelogs").json()["aggregated"]
        assert any(item["kind"] == "service_key_create" for item in aggregated)
    with bearer_client(server, issue_token(server, person.username, ALL_SCOPES)) as user:
        assert user.get("/api/v1/superuser/logs").status_code == 403
        assert user.get("/api/v1/superuser/aggregatelogs").status_code == 403
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/api/v1/superuser/logs").status_code == 401
