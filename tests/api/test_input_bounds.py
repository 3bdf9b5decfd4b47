"""Malformed and oversized input to /api/v1 answers 400 or 413, stores nothing, and leaves the
connection usable: deeply nested JSON, out-of-range numbers and dates, huge bodies."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from tests.support.accounts import (
    ALL_SCOPES,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.content import make_repository
from tests.support.keepalive import KeepAliveConnection
from tests.support.server import LiveServer

NESTED = b"[" * 100_000
NESTED_OBJECTS = b'{"description":' * 100 + b'"x"' + b"}" * 100
MIB = 1024 * 1024


@pytest.fixture
def owner_token(server: LiveServer, user) -> str:
    return issue_token(server, user.username, ALL_SCOPES)


@pytest.fixture
def repo(server: LiveServer, user) -> str:
    return make_repository(server, user.username)


def _description(server: LiveServer, token: str, repo: str) -> str | None:
    with bearer_client(server, token) as client:
        return client.get(f"/api/v1/repository/{repo}").json()["description"]


@pytest.mark.parametrize("body", [NESTED, NESTED_OBJECTS, b'{"description": 1e999}'])
def test_nested_or_unbounded_json_is_a_400_on_one_kept_connection(
    server: LiveServer, owner_token: str, repo: str, body: bytes
) -> None:
    headers = {"Authorization": f"Bearer {owner_token}", "Content-Type": "application/json"}
    with KeepAliveConnection(server, headers) as connection:
        refused = connection.request("PUT", f"/api/v1/repository/{repo}", body)
        assert refused.status == 400, refused.body[:300]
        assert refused.json() == {
            "message": "The browser (or proxy) sent a request that this server could not understand."
        }
        fine = connection.request(
            "PUT", f"/api/v1/repository/{repo}", json.dumps({"description": "kept"}).encode()
        )
        assert fine.status == 200, fine.body
    assert _description(server, owner_token, repo) == "kept"


def test_nested_json_is_a_400_on_every_body_parser(
    server: LiveServer, owner_token: str, user
) -> None:
    """Organization creation (the common parser), a team invite (its own parser), a service
    key JWK and a build webhook each read JSON; none of them may fail with a 500."""
    org = f"org{user.id}"
    with bearer_client(server, owner_token) as client:
        created = client.post("/api/v1/organization/", content=NESTED)
        assert created.status_code == 400
        assert client.get(f"/api/v1/organization/{org}").status_code == 404
        assert client.post("/api/v1/organization/", json={"name": org}).status_code == 201
        team = client.put(f"/api/v1/organization/{org}/team/builders", content=NESTED)
        assert team.status_code == 400
    jwk = httpx.put(
        f"{server.url}/keys/services/quay/keys/somekid",
        content=NESTED,
        headers={"Authorization": "Bearer a.b.c"},
        timeout=30,
    )
    assert jwk.status_code == 400
    assert "JWK" in jwk.text
    assert httpx.get(f"{server.url}/health/instance").status_code == 200


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v1/repository/{repo}/tag/?page=922337203685477580", "page"),
        ("/api/v1/repository/{repo}/tag/?limit=99999999999999999999", "limit"),
        ("/api/v1/repository/{repo}/build/?limit=9223372036854775808", "limit"),
        ("/api/v1/repository/{repo}/build/?since=253402300800", "since"),
        ("/api/v1/repository/{repo}/build/?since=-99999999999", "since"),
        ("/api/v1/user/notifications?page=99999999999999999999", "page"),
        ("/api/v1/superuser/organizations/?limit=99999999999999999999", "limit"),
        ("/api/v1/user/robots?limit=99999999999999999999", "limit"),
    ],
)
def test_out_of_range_numbers_are_a_400_naming_the_parameter(
    server: LiveServer, admin, user, path: str, parameter: str
) -> None:
    repo = make_repository(server, user.username, public=True)
    token = issue_token(server, admin.username, ALL_SCOPES)
    with KeepAliveConnection(server, {"Authorization": f"Bearer {token}"}) as connection:
        refused = connection.request("GET", path.format(repo=repo))
        assert refused.status == 400, refused.body[:300]
        assert parameter in refused.json()["message"]
        assert connection.request("GET", f"/api/v1/repository/{repo}").status == 200


def test_a_log_window_past_the_calendar_is_a_400(
    server: LiveServer, owner_token: str, repo: str
) -> None:
    paths = [
        f"/api/v1/repository/{repo}/logs",
        f"/api/v1/repository/{repo}/aggregatelogs",
        "/api/v1/user/logs",
        "/api/v1/user/aggregatelogs",
    ]
    with KeepAliveConnection(server, {"Authorization": f"Bearer {owner_token}"}) as connection:
        for path in paths:
            refused = connection.request("GET", f"{path}?endtime=12/31/9999")
            assert refused.status == 400, f"{path}: {refused.body[:300]!r}"
        last_day = connection.request("GET", "/api/v1/user/logs?endtime=12/30/9999")
        assert last_day.status == 200, last_day.body[:300]


def test_a_body_over_the_limit_is_a_413_and_nothing_is_stored(
    server: LiveServer, owner_token: str, repo: str
) -> None:
    with bearer_client(server, owner_token) as client:
        huge = {"description": "x" * (MIB + 1)}
        refused = client.put(f"/api/v1/repository/{repo}", json=huge)
        assert refused.status_code == 413
        assert refused.json() == {
            "message": "The data value transmitted exceeds the capacity limit."
        }
        assert client.get(f"/api/v1/repository/{repo}").json()["description"] in (None, "")
        under = {"description": "y" * (MIB - 100)}
        assert client.put(f"/api/v1/repository/{repo}", json=under).status_code == 200
    assert _description(server, owner_token, repo) == under["description"]


def test_a_chunked_body_is_counted_as_it_arrives(
    server: LiveServer, owner_token: str, repo: str
) -> None:
    """No Content-Length to refuse up front: the limit holds on the bytes themselves."""

    def pieces():
        yield b'{"description": "'
        for _ in range(40):
            yield b"z" * 64 * 1024
        yield b'"}'

    with bearer_client(server, owner_token) as client:
        refused = client.put(
            f"/api/v1/repository/{repo}",
            content=pieces(),
            headers={"Content-Type": "application/json"},
        )
        assert refused.status_code == 413
        assert client.get(f"/api/v1/repository/{repo}").json()["description"] in (None, "")


def test_the_body_limit_is_configurable_and_spares_streamed_uploads(server_factory) -> None:
    live = server_factory({"API_MAX_BODY_BYTES": 4096})
    owner = create_user(live)
    repo = make_repository(live, owner.username)
    token = issue_token(live, owner.username, ALL_SCOPES)
    with bearer_client(live, token) as client:
        refused = client.put(f"/api/v1/repository/{repo}", json={"description": "d" * 5000})
        assert refused.status_code == 413
        assert client.put(f"/api/v1/repository/{repo}", json={"description": "d" * 3000}).is_success
        drop = client.post("/api/v1/filedrop/", json={"mimeType": "application/gzip"})
        assert drop.status_code == 200, drop.text
        archive = b"a" * (256 * 1024)
        upload = client.put(
            drop.json()["url"].replace(live.settings.server_url, ""), content=archive
        )
        assert upload.status_code == 200, upload.text
        data = b"b" * (256 * 1024)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
    registry_token = httpx.get(
        f"{live.url}/v2/auth",
        params={"service": live.host, "scope": f"repository:{repo}:pull,push"},
        auth=(owner.username, owner.password),
        timeout=30,
    ).json()["token"]
    pushed = httpx.post(
        f"{live.url}/v2/{repo}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Authorization": f"Bearer {registry_token}"},
        timeout=60,
    )
    assert pushed.status_code == 201, pushed.text


@pytest.mark.parametrize("quota_id", ["%C2%B2", "%D9%A1", "9" * 30])
def test_quota_ids_that_are_not_plain_numbers_are_not_found(
    server: LiveServer, owner_token: str, user, quota_id: str
) -> None:
    """Found by the schemathesis walk: str.isdigit() accepts "²" and "١", int() does not."""
    org = create_organization(server, user)
    with KeepAliveConnection(server, {"Authorization": f"Bearer {owner_token}"}) as connection:
        missing = connection.request("GET", f"/api/v1/organization/{org}/quota/{quota_id}/limit")
        assert missing.status == 404, missing.body[:300]
        assert connection.request("GET", f"/api/v1/organization/{org}/quota").status == 200
