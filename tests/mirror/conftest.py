"""Mirror fixtures: a server whose worker syncs often, an upstream docker-registry, a mirror."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from cargohold.db.models.registry import Role
from tests.support.accounts import ALL_SCOPES, TestUser, bearer_client, create_user, issue_token
from tests.support.registry import create_robot, make_repository
from tests.support.server import LiveServer
from tests.support.upstream import UpstreamRegistry

UPSTREAM_CREDENTIALS = ("puller", "upstream-secret-1")


@pytest.fixture(scope="module")
def mirror_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Workers on, a one-second mirror pass, loopback upstreams allowed."""
    live = LiveServer(
        tmp_path_factory.mktemp("mirror-server"),
        {"REPO_MIRROR_INTERVAL": 1, "SSRF_ALLOWED_HOSTS": ["127.0.0.1"]},
    ).start()
    yield live
    live.destroy()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamRegistry]:
    registry = UpstreamRegistry(tmp_path_factory.mktemp("upstream")).start()
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def secured_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamRegistry]:
    registry = UpstreamRegistry(
        tmp_path_factory.mktemp("secured-upstream"), UPSTREAM_CREDENTIALS
    ).start()
    yield registry
    registry.stop()


@dataclass
class MirrorSetup:
    owner: TestUser
    repo: str
    robot: str
    client: httpx.Client

    @property
    def url(self) -> str:
        return f"/api/v1/repository/{self.repo}/mirror"


def mirror_setup(server: LiveServer) -> MirrorSetup:
    owner = create_user(server)
    repo = make_repository(server, owner.username, "mirrored", public=False)
    robot = f"{owner.username}+mirror"
    create_robot(server, owner.username, "mirror", {repo: Role.read})
    client = bearer_client(server, issue_token(server, owner.username, ALL_SCOPES))
    return MirrorSetup(owner, repo, robot, client)
