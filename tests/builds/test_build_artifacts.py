"""Build artefacts outside /api/v1: /buildlogs, /logarchive and the build-status badge."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.builds import BuildLogEntry, RepositoryBuild
from tests.support.accounts import ALL_SCOPES, TestUser, bearer_client, create_user, issue_token
from tests.support.content import make_repository
from tests.support.repos import grant
from tests.support.server import LiveServer

SVG = "{http://www.w3.org/2000/svg}"


def _request_build(client: httpx.Client, repo: str) -> str:
    response = client.post(
        f"/api/v1/repository/{repo}/build/",
        json={"archive_url": "http://archives.invalid/ctx.tar.gz"},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _set_phase(server: LiveServer, build_uuid: str, phase: str) -> None:
    with server.db() as session:
        build = session.scalar(select(RepositoryBuild).where(RepositoryBuild.uuid == build_uuid))
        build.phase = phase


def _add_log_lines(server: LiveServer, build_uuid: str, count: int) -> None:
    with server.db() as session:
        build_id = session.scalar(
            select(RepositoryBuild.id).where(RepositoryBuild.uuid == build_uuid)
        )
        for index in range(count):
            session.add(BuildLogEntry(build_id=build_id, message=f"step {index}", type="command"))


@pytest.fixture
def clients(idle_server: LiveServer, owner: TestUser, owner_client: httpx.Client):
    """Owner, reader, writer and stranger clients on one fresh repository."""
    repo = make_repository(idle_server, owner.username)
    made = {"owner": owner_client, "anonymous": httpx.Client(base_url=idle_server.url)}
    for role in ("read", "write", None):
        person = create_user(idle_server)
        if role:
            grant(idle_server, repo, person.username, role)
        token = issue_token(idle_server, person.username, ALL_SCOPES)
        made[role or "stranger"] = bearer_client(idle_server, token)
    yield repo, made
    for name, client in made.items():
        if name != "owner":
            client.close()


def test_build_logs_download(idle_server: LiveServer, clients) -> None:
    repo, made = clients
    build = _request_build(made["owner"], repo)
    _add_log_lines(idle_server, build, 3)
    for who in ("owner", "write"):
        response = made[who].get(f"/buildlogs/{build}")
        assert response.status_code == 200, who
        assert response.headers["content-disposition"] == f"attachment;filename={build}.json"
        messages = [entry["message"] for entry in response.json()["logs"]]
        assert messages[-3:] == ["step 0", "step 1", "step 2"]
    # Readers need FEATURE_READER_BUILD_LOGS; strangers, anonymous callers and unknown builds
    # all get the same 403.
    for who in ("read", "stranger", "anonymous"):
        assert made[who].get(f"/buildlogs/{build}").status_code == 403, who
    unknown = made["owner"].get("/buildlogs/00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 403
    assert "permission" in unknown.json()["message"]


def test_log_archive_serves_finished_builds_only(idle_server: LiveServer, clients) -> None:
    repo, made = clients
    build = _request_build(made["owner"], repo)
    _add_log_lines(idle_server, build, 2)
    assert made["owner"].get(f"/logarchive/{build}").status_code == 403
    _set_phase(idle_server, build, "complete")
    archived = made["write"].get(f"/logarchive/{build}")
    assert archived.status_code == 200
    document = archived.json()
    assert document["start"] == 0
    assert document["total"] == len(document["logs"]) >= 2
    assert [entry["message"] for entry in document["logs"]][-2:] == ["step 0", "step 1"]
    for who in ("read", "stranger", "anonymous"):
        assert made[who].get(f"/logarchive/{build}").status_code == 403, who


def test_reader_build_logs_feature_opens_logs_to_readers(server_factory) -> None:
    live = server_factory({"BUILD_EXECUTOR": "none", "FEATURE_READER_BUILD_LOGS": True})
    owner = create_user(live)
    reader = create_user(live)
    stranger = create_user(live)
    repo = make_repository(live, owner.username)
    grant(live, repo, reader.username, "read")
    with bearer_client(live, issue_token(live, owner.username, ALL_SCOPES)) as client:
        build = _request_build(client, repo)
    with bearer_client(live, issue_token(live, reader.username, ALL_SCOPES)) as client:
        assert client.get(f"/buildlogs/{build}").status_code == 200
    with bearer_client(live, issue_token(live, stranger.username, ALL_SCOPES)) as client:
        assert client.get(f"/buildlogs/{build}").status_code == 403


def _badge_state(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["cache-control"] == "no-cache"
    root = ET.fromstring(response.text)
    assert root.tag == f"{SVG}svg"
    texts = [element.text for element in root.iter(f"{SVG}text")]
    assert texts[0] == "container"
    assert root.find(f"{SVG}title").text == f"container: {texts[1]}"
    assert response.headers["etag"] == texts[1]
    return texts[1]


def test_public_badge_follows_the_latest_build(
    idle_server: LiveServer, owner: TestUser, owner_client: httpx.Client
) -> None:
    repo = make_repository(idle_server, owner.username, public=True)
    url = f"{idle_server.url}/repository/{repo}/status"
    assert _badge_state(httpx.get(url)) == "none"
    build = _request_build(owner_client, repo)
    assert _badge_state(httpx.get(url)) == "building"
    for phase, state in (("complete", "ready"), ("error", "failed"), ("internalerror", "building")):
        _set_phase(idle_server, build, phase)
        assert _badge_state(httpx.get(url)) == state
    newer = _request_build(owner_client, repo)
    assert owner_client.delete(f"/api/v1/repository/{repo}/build/{newer}").status_code == 201
    assert _badge_state(httpx.get(url)) == "cancelled"
    unchanged = httpx.get(url, headers={"If-None-Match": "cancelled"})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert _badge_state(httpx.get(url, headers={"If-None-Match": "ready"})) == "cancelled"


def test_private_badge_needs_the_badge_token(
    idle_server: LiveServer, owner: TestUser, owner_client: httpx.Client
) -> None:
    repo = make_repository(idle_server, owner.username)
    url = f"{idle_server.url}/repository/{repo}/status"
    token = owner_client.get(f"/api/v1/repository/{repo}").json()["status_token"]
    assert token
    assert _badge_state(httpx.get(url, params={"token": token})) == "none"
    for params in ({}, {"token": "wrong"}, {"token": ""}):
        hidden = httpx.get(url, params=params)
        assert hidden.status_code == 404
        assert "svg" not in hidden.headers["content-type"]
    # Being signed in does not replace the token, as in Quay.
    assert owner_client.get(f"/repository/{repo}/status").status_code == 404
    missing = httpx.get(f"{idle_server.url}/repository/{owner.username}/nosuchrepo/status")
    assert missing.status_code == 404
    assert httpx.get(f"{idle_server.url}/repository/{owner.username}/status").status_code == 404
