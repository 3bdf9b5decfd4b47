"""Proxy-cache fixtures: a server allowing loopback upstreams, and a docker-registry upstream."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_organization,
    create_user,
    issue_token,
)
from tests.support.server import LiveServer
from tests.support.upstream import UpstreamRegistry

UPSTREAM_CREDENTIALS = ("puller", "upstream-secret-1")


@pytest.fixture(scope="module")
def proxy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(
        tmp_path_factory.mktemp("proxy-server"), {"SSRF_ALLOWED_HOSTS": ["127.0.0.1"]}
    ).start()
    yield live
    live.destroy()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamRegistry]:
    registry = UpstreamRegistry(
        tmp_path_factory.mktemp("proxy-upstream"), UPSTREAM_CREDENTIALS
    ).start()
    yield registry
    registry.stop()


@dataclass
class ProxyOrg:
    owner: TestUser
    org: str
    client: httpx.Client

    @property
    def url(self) -> str:
        return f"/api/v1/organization/{self.org}/proxycache"

    def configure(self, upstream_registry: str, **extra) -> httpx.Response:
        body = {"upstream_registry": upstream_registry, "insecure": True, **extra}
        return self.client.post(self.url, json=body)


def proxy_org(server: LiveServer) -> ProxyOrg:
    owner = create_user(server)
    org = create_organization(server, owner)
    client = bearer_client(server, issue_token(server, owner.username, ALL_SCOPES))
    return ProxyOrg(owner, org, client)


@pytest.fixture
def org(proxy_server: LiveServer) -> Iterator[ProxyOrg]:
    made = proxy_org(proxy_server)
    yield made
    made.client.close()
