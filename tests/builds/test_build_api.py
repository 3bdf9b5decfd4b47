"""The repository build API and filedrop uploads, on a server that queues builds only."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest
from sqlalchemy import select

from cargohold.db.models.audit import LogEntry
from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.content import make_repository
from tests.support.repos import grant


@pytest.fixture
def repo(idle_server, owner) -> str:
    return make_repository(idle_server, owner.username)


def _request(client: httpx.Client, repo: str, **body) -> httpx.Response:
    return client.post(f"/api/v1/repository/{repo}/build/", json=body)


def test_request_validation(owner_client, repo) -> None:
    missing = _request(owner_client, repo)
    assert missing.status_code == 400
    assert missing.json()["detail"] == "file_id or archive_url required"
    for url in ("foobarbaz", "file:///etc/passwd", "ftp://example.com/x.tar"):
        bad = _request(owner_client, repo, archive_url=url)
        assert bad.status_code == 400, url
        assert bad.json()["detail"].startswith("Invalid Archive URL")
    unknown_file = _request(owner_client, repo, file_id="nope")
    assert unknown_file.status_code == 400
    assert unknown_file.json()["detail"] == "File nope could not be found or is invalid"
    assert (
        _request(owner_client, repo, archive_url="http://x/y", pull_robot="ghost").status_code
        == 403
    )
    bad_limit = owner_client.get(f"/api/v1/repository/{repo}/build/?limit=x")
    assert bad_limit.status_code == 400
    assert bad_limit.json() == {"message": {"limit": "The maximum number of builds to return"}}


def test_archive_url_build_is_queued_and_stays_waiting(
    idle_server, owner, owner_client, repo
) -> None:
    response = _request(
        owner_client,
        repo,
        archive_url="http://archives.invalid/ctx.tar.gz",
        docker_tags=["v1", "with space"],
        subdirectory="app",
    )
    assert response.status_code == 201, response.text
    build = response.json()
    assert response.headers["location"].endswith(f"/build/{build['id']}/status")
    expected_name = hashlib.sha224(b"http://archives.invalid/ctx.tar.gz").hexdigest()[:7]
    assert build["display_name"] == expected_name
    assert build["tags"] == ["v1", "with_space"]
    assert build["subdirectory"] == "app/Dockerfile" == build["dockerfile_path"]
    assert build["context"] == "app"
    assert build["archive_url"] == "http://archives.invalid/ctx.tar.gz"
    assert build["repository"] == dict(zip(("namespace", "name"), repo.split("/"), strict=True))
    assert build["is_writer"] is True and build["trigger"] is None
    assert build["trigger_metadata"] == {}
    assert build["started"].endswith("-0000")
    time.sleep(1.5)
    status = owner_client.get(f"/api/v1/repository/{repo}/build/{build['id']}/status").json()
    assert status["phase"] == "waiting"
    listed = owner_client.get(f"/api/v1/repository/{repo}/build/").json()["builds"]
    assert [b["id"] for b in listed] == [build["id"]]
    future = int(time.time()) + 3600
    assert owner_client.get(f"/api/v1/repository/{repo}/build/?since={future}").json() == {
        "builds": []
    }
    logs = owner_client.get(f"/api/v1/repository/{repo}/build/{build['id']}/logs").json()
    assert logs == {"start": 0, "total": 0, "logs": []}


def test_cancel(idle_server, owner_client, repo) -> None:
    build = _request(owner_client, repo, archive_url="http://archives.invalid/x.tar").json()
    url = f"/api/v1/repository/{repo}/build/{build['id']}"
    cancelled = owner_client.delete(url)
    assert cancelled.status_code == 201 and cancelled.json() == "Okay"
    assert owner_client.get(url).json()["phase"] == "cancelled"
    again = owner_client.delete(url)
    assert again.status_code == 400
    assert again.json()["detail"] == "Build is currently running or has finished"
    logs = owner_client.get(url + "/logs").json()
    assert logs["logs"][-1]["message"] == "cancelled" and logs["logs"][-1]["type"] == "phase"
    assert owner_client.get(url + "/logs?start=1").json()["logs"] == []
    with idle_server.db() as session:
        kinds = session.scalars(select(LogEntry.kind).where(LogEntry.kind == "cancel_build")).all()
    assert kinds


def test_unknown_and_foreign_builds(idle_server, owner, owner_client, repo) -> None:
    other = make_repository(idle_server, owner.username)
    build = _request(owner_client, other, archive_url="http://archives.invalid/x.tar").json()
    base = f"/api/v1/repository/{repo}/build"
    assert owner_client.get(f"{base}/{build['id']}").status_code == 404
    assert owner_client.get(f"{base}/{build['id']}/status").status_code == 404
    assert owner_client.delete(f"{base}/{build['id']}").status_code == 404
    assert owner_client.get(f"{base}/nope").status_code == 404
    status = owner_client.get(f"{base}/nope/status")
    assert status.status_code == 400
    assert status.json() == {"message": "Unable to locate a build by id: nope"}
    assert owner_client.get(f"{base}/nope/logs").status_code == 400
    assert owner_client.delete(f"{base}/nope").status_code == 404


def test_permissions(idle_server, owner, owner_client, repo) -> None:
    build = _request(owner_client, repo, archive_url="http://archives.invalid/x.tar").json()
    reader = create_user(idle_server)
    writer = create_user(idle_server)
    stranger = create_user(idle_server)
    grant(idle_server, repo, reader.username, "read")
    grant(idle_server, repo, writer.username, "write")
    base = f"/api/v1/repository/{repo}/build"
    tokens = {
        name: issue_token(idle_server, user.username, ALL_SCOPES)
        for name, user in (("reader", reader), ("writer", writer), ("stranger", stranger))
    }
    with bearer_client(idle_server, tokens["reader"]) as client:
        view = client.get(f"{base}/{build['id']}").json()
        assert view["is_writer"] is False and "archive_url" not in view
        assert client.get(f"{base}/{build['id']}/logs").status_code == 403
        assert _request(client, repo, archive_url="http://x/y.tar").status_code == 403
        assert client.delete(f"{base}/{build['id']}").status_code == 403
    with bearer_client(idle_server, tokens["writer"]) as client:
        assert client.get(f"{base}/{build['id']}/logs").status_code == 200
        assert _request(client, repo, archive_url="http://x/y.tar").status_code == 201
        assert client.delete(f"{base}/{build['id']}").status_code == 403
    with bearer_client(idle_server, tokens["stranger"]) as client:
        assert client.get(f"{base}/").status_code == 403
        assert client.get(f"{base}/{build['id']}").status_code == 403
    assert httpx.get(f"{idle_server.url}{base}/").status_code == 401


def test_filedrop_upload_and_build(idle_server, owner_client, repo) -> None:
    drop = owner_client.post("/api/v1/filedrop/", json={"mimeType": "application/x-tar"})
    assert drop.status_code == 200
    file_id, url = drop.json()["file_id"], drop.json()["url"]
    assert url == f"{idle_server.url}/userfiles/{file_id}"
    content = b"FROM scratch\nCOPY a /a\n"
    assert httpx.put(url, content=content).status_code == 200
    assert httpx.put(url, content=b"other").status_code == 400
    assert owner_client.post("/api/v1/filedrop/", json={}).status_code == 400
    response = _request(owner_client, repo, file_id=file_id, dockerfile_path="sub/Dockerfile")
    assert response.status_code == 201, response.text
    build = response.json()
    assert build["display_name"] == hashlib.sha256(content).hexdigest()[:7]
    assert build["resource_key"] == file_id
    assert build["context"] == "sub"
    assert httpx.get(build["archive_url"]).content == content
    assert httpx.get(url).status_code == 404
    assert httpx.get(url + "?token=forged").status_code == 404
