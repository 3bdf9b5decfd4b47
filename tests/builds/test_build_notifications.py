"""Builds raise their notification events: queued, start, success, failure and cancelled."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

import httpx
import pytest

from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.builds import wait_for_build
from tests.support.content import make_repository
from tests.support.server import LiveServer
from tests.support.webhook import WebhookListener, webhook_listener

pytestmark = pytest.mark.slow

BUILD_EVENTS = ("build_queued", "build_start", "build_success", "build_failure")


@pytest.fixture
def listener() -> Iterator[WebhookListener]:
    with webhook_listener() as made:
        yield made


def _tar_gz(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _start(client: httpx.Client, repo: str, archive: bytes, tag: str) -> dict:
    drop = client.post("/api/v1/filedrop/", json={"mimeType": "application/gzip"}).json()
    assert httpx.put(drop["url"], content=archive).status_code == 200
    response = client.post(
        f"/api/v1/repository/{repo}/build/",
        json={"file_id": drop["file_id"], "docker_tags": [tag]},
    )
    assert response.status_code == 201, response.text
    return response.json()


def _subscribe(client: httpx.Client, repo: str, listener: WebhookListener, event: str, **extra):
    response = client.post(
        f"/api/v1/repository/{repo}/notification/",
        json={
            "event": event,
            "method": "webhook",
            "config": {"url": f"{listener.url}/{event}"},
            "eventConfig": extra,
        },
    )
    assert response.status_code == 201, response.text


def test_a_build_fires_its_events(server_factory, listener) -> None:
    live: LiveServer = server_factory({"SSRF_ALLOWED_HOSTS": ["127.0.0.2"]})
    user = create_user(live)
    repo = make_repository(live, user.username)
    with bearer_client(live, issue_token(live, user.username, ALL_SCOPES)) as client:
        for event in BUILD_EVENTS:
            _subscribe(client, repo, listener, event)
        # Manual builds carry no git ref, so a ref filter keeps this one silent.
        _subscribe(client, repo, listener, "build_success", **{"ref-regex": "refs/heads/.*"})

        archive = _tar_gz(
            {"Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\n", "hello.txt": "hi\n"}
        )
        built = _start(client, repo, archive, "v1")
        done = wait_for_build(client, repo, built["id"])
        assert done["phase"] == "complete"
        for event in ("build_queued", "build_start", "build_success"):
            body = listener.wait_for(1, path=f"/{event}")[0].body
            assert body["build_id"] == built["id"]
            assert body["repository"] == repo
            assert body["docker_tags"] == ["v1"]
            assert body["homepage"] == f"{live.url}/repository/{repo}/build/{built['id']}"
        queued = listener.wait_for(1, path="/build_queued")[0].body
        assert queued["is_manual"] is True
        assert queued["manual_user"] == user.username
        started = listener.wait_for(1, path="/build_start")[0].body
        assert started["build_name"] == built["display_name"]
        assert started["trigger_id"] is None

        junk = _start(client, repo, b"\x00\x01 not an archive" * 20, "junk")
        assert wait_for_build(client, repo, junk["id"])["phase"] == "error"
        failure = listener.wait_for(1, path="/build_failure")[0].body
        assert failure["build_id"] == junk["id"]
        assert failure["error_message"] == (
            "The build file is not a tar or zip archive, nor a Dockerfile"
        )
        assert len(listener.wait_for(2, path="/build_queued")) == 2
        assert len([r for r in listener.received if r.path == "/build_success"]) == 1


def test_a_cancelled_build_fires_build_cancelled(server_factory, listener) -> None:
    live: LiveServer = server_factory(
        {"SSRF_ALLOWED_HOSTS": ["127.0.0.2"], "BUILD_EXECUTOR": "none"}
    )
    user = create_user(live)
    repo = make_repository(live, user.username)
    with bearer_client(live, issue_token(live, user.username, ALL_SCOPES)) as client:
        _subscribe(client, repo, listener, "build_cancelled")
        build = _start(client, repo, _tar_gz({"Dockerfile": "FROM scratch\n"}), "never")
        cancelled = client.delete(f"/api/v1/repository/{repo}/build/{build['id']}")
        assert cancelled.status_code == 201
        body = listener.wait_for(1, path="/build_cancelled")[0].body
        assert body["build_id"] == build["id"]
        assert body["docker_tags"] == ["never"]
