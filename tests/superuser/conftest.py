"""Fixtures for the superuser, quota and service-key tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.accounts import ALL_SCOPES, TestUser, bearer_client, create_user, issue_token
from tests.support.server import LiveServer


@pytest.fixture(scope="session")
def admin_client(server: LiveServer, admin: TestUser) -> Iterator[httpx.Client]:
    with bearer_client(server, issue_token(server, admin.username, ALL_SCOPES)) as client:
        yield client


@pytest.fixture(scope="session")
def full_access_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Superusers with FEATURE_SUPERUSERS_FULL_ACCESS, plus a global read-only superuser."""
    live = LiveServer(
        tmp_path_factory.mktemp("full_access"),
        {
            "FEATURE_SUPERUSERS_FULL_ACCESS": True,
            "GLOBAL_READONLY_SUPER_USERS": ["auditor"],
            "DEFAULT_SYSTEM_REJECT_QUOTA_BYTES": 107374182400,
            "QUOTA_REGISTRY_SIZE_POLL_PERIOD": 1,
        },
    ).start()
    yield live
    live.destroy()


class Callers:
    """Clients for one server: superuser, read-only superuser, ordinary user, anonymous."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.admin_user = create_user(server, "admin")
        self.auditor_user = create_user(server, "auditor")
        self.plain_user = create_user(server)
        self.admin = bearer_client(server, issue_token(server, "admin", ALL_SCOPES))
        self.auditor = bearer_client(server, issue_token(server, "auditor", ALL_SCOPES))
        self.plain = bearer_client(
            server, issue_token(server, self.plain_user.username, ALL_SCOPES)
        )
        self.anon = httpx.Client(base_url=server.url, timeout=30)

    def close(self) -> None:
        for client in (self.admin, self.auditor, self.plain, self.anon):
            client.close()


@pytest.fixture(scope="session")
def full_callers(full_access_server: LiveServer) -> Iterator[Callers]:
    callers = Callers(full_access_server)
    yield callers
    callers.close()


def assert_api_error(response: httpx.Response, status: int, error_type: str, detail=None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_type"] == error_type
    assert body["status"] == status
    if detail is not None:
        assert body["detail"] == detail
