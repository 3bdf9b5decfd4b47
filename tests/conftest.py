"""Shared fixtures: one live server per test session, plus factories for custom ones.

The backend comes from CARGOHOLD_TEST_DB (sqlite or postgres) and CARGOHOLD_TEST_STORAGE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.accounts import ALL_SCOPES, TestUser, bearer_client, create_user, issue_token
from tests.support.seaweed import stop_shared_seaweed
from tests.support.server import LiveServer


@pytest.fixture(scope="session", autouse=True)
def _stop_seaweed_at_session_end() -> Iterator[None]:
    """SeaweedFS starts on first use (S3 runs, storage tests) and stops with the session."""
    yield
    stop_shared_seaweed()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("server")).start()
    yield live
    live.destroy()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start a server with extra config keys; stopped after the test."""
    started: list[LiveServer] = []

    def start(
        config: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        workers: int | None = None,
    ) -> LiveServer:
        live = LiveServer(tmp_path / f"server{len(started)}", config, env, workers=workers)
        started.append(live)
        return live.start()

    yield start
    for live in started:
        live.destroy()


@pytest.fixture(scope="session")
def admin(server: LiveServer) -> TestUser:
    """The superuser named in the test servers' SUPER_USERS."""
    return create_user(server, "admin")


@pytest.fixture
def user(server: LiveServer) -> TestUser:
    return create_user(server)


@pytest.fixture
def user_client(server: LiveServer, user: TestUser) -> Iterator[httpx.Client]:
    with bearer_client(server, issue_token(server, user.username, ALL_SCOPES)) as client:
        yield client


@pytest.fixture
def anon_client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
