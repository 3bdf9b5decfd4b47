"""Build sources aimed at the server itself: refused at the API and again by the worker."""

from __future__ import annotations

import io
import tarfile

import httpx
import pytest

from tests.support.accounts import ALL_SCOPES, bearer_client, create_user, issue_token
from tests.support.builds import activate, logs, setup_custom_trigger, wait_for_build
from tests.support.canary import canary_server
from tests.support.content import make_repository
from tests.support.server import free_port

LOOPBACK_SPELLINGS = ["127.0.0.1", "[::1]", "127.1", "2130706433", "localhost.", "0x7f000001"]


@pytest.fixture
def repo(idle_server, owner) -> str:
    return make_repository(idle_server, owner.username)


def _request(client: httpx.Client, repo: str, url: str) -> httpx.Response:
    return client.post(f"/api/v1/repository/{repo}/build/", json={"archive_url": url})


def test_archive_urls_aimed_inward_are_refused(owner_client, repo) -> None:
    with canary_server() as canary:
        for host in LOOPBACK_SPELLINGS:
            response = _request(owner_client, repo, f"http://{host}:{canary.port}/ctx.tar.gz")
            assert response.status_code == 400, host
            assert response.json()["detail"].startswith("Invalid Archive URL: The host"), host
        metadata = _request(owner_client, repo, "http://169.254.169.254/latest/meta-data/")
        assert metadata.status_code == 400
        assert canary.requests == []
    assert owner_client.get(f"/api/v1/repository/{repo}/build/").json()["builds"] == []


def test_open_and_closed_ports_answer_alike(owner_client, repo) -> None:
    with canary_server() as canary:
        opened = _request(owner_client, repo, f"http://127.0.0.1:{canary.port}/a.tar")
        closed = _request(owner_client, repo, f"http://127.0.0.1:{free_port()}/a.tar")
        assert canary.requests == []
    assert opened.status_code == closed.status_code == 400
    assert opened.json() == closed.json()


@pytest.mark.parametrize(
    "source",
    [
        "file:///etc",
        "file://localhost/srv/git/app.git",
        "/srv/git/app.git",
        "../app.git",
        "ext::sh -c id",
        "git://127.0.0.1:9418/app.git",
        "https://[::1]/app.git",
        "ssh://git@2130706433/app.git",
        "git@localhost.:team/app.git",
    ],
)
def test_trigger_sources_on_the_server_are_refused(idle_server, owner, owner_client, repo, source):
    trigger = setup_custom_trigger(idle_server, owner, repo)
    config = {"build_source": source, "dockerfile_path": "/Dockerfile", "context": "/"}
    response = activate(owner_client, repo, trigger, config)
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("Invalid build source:")
    view = owner_client.get(f"/api/v1/repository/{repo}/trigger/{trigger}").json()
    assert view["is_active"] is False and view["config"] == {}


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.slow
def test_worker_refuses_a_redirect_inward(server_factory) -> None:
    """An allowed archive host that redirects to loopback gets the build nowhere."""
    with canary_server() as target, canary_server() as allowed:
        live = server_factory({"SSRF_ALLOWED_HOSTS": [f"127.0.0.1:{allowed.port}"]})
        user = create_user(live)
        repo = make_repository(live, user.username)
        with bearer_client(live, issue_token(live, user.username, ALL_SCOPES)) as client:
            for spelling in ("127.1", "localhost.", "[::1]"):
                allowed.redirect_to = f"http://{spelling}:{target.port}/ctx.tar.gz"
                response = _request(client, repo, f"{allowed.url}/start.tar.gz")
                assert response.status_code == 201, response.text
                done = wait_for_build(client, repo, response.json()["id"], timeout=120)
                assert done["phase"] == "error"
                errors = [
                    e["message"] for e in logs(client, repo, done["id"]) if e.get("type") == "error"
                ]
                assert errors == [
                    f"Could not download the build archive: The host {spelling.strip('[]')} is not allowed"
                ]
        assert len(allowed.requests) == 3
        assert target.requests == []
