from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.accounts import ALL_SCOPES, TestUser, bearer_client, create_user, issue_token
from tests.support.builds import GitDaemon
from tests.support.server import LiveServer


@pytest.fixture(scope="session")
def git_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitDaemon]:
    """`git daemon` on loopback: the build sources of the tests that really build."""
    daemon = GitDaemon(tmp_path_factory.mktemp("git-served")).start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, git_daemon: GitDaemon) -> Iterator[LiveServer]:
    """The build tests' server: the git daemon's port is the one loopback address it may fetch."""
    live = LiveServer(
        tmp_path_factory.mktemp("build-server"),
        {"SSRF_ALLOWED_HOSTS": [f"127.0.0.1:{git_daemon.port}"]},
    ).start()
    yield live
    live.destroy()


@pytest.fixture(scope="session")
def idle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server that accepts builds but runs none (BUILD_EXECUTOR: none), for API tests."""
    live = LiveServer(tmp_path_factory.mktemp("idle"), {"BUILD_EXECUTOR": "none"}).start()
    yield live
    live.destroy()


@pytest.fixture(scope="session")
def owner(idle_server: LiveServer) -> TestUser:
    return create_user(idle_server)


@pytest.fixture(scope="session")
def owner_client(idle_server: LiveServer, owner: TestUser) -> Iterator[httpx.Client]:
    with bearer_client(idle_server, issue_token(idle_server, owner.username, ALL_SCOPES)) as c:
        yield c


@pytest.fixture(scope="module")
def builder_user(server: LiveServer) -> TestUser:
    """The account whose repositories the build-running tests use."""
    return create_user(server)


@pytest.fixture(scope="module")
def client(server: LiveServer, builder_user: TestUser) -> Iterator[httpx.Client]:
    with bearer_client(server, issue_token(server, builder_user.username, ALL_SCOPES)) as c:
        yield c
