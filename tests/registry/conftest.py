from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.accounts import TestUser, create_user, unique
from tests.support.registry import make_repository, pull_push, token_for, v2_client
from tests.support.server import LiveServer


@pytest.fixture(scope="session")
def owner(server: LiveServer) -> TestUser:
    """A user whose namespace the registry tests push into."""
    return create_user(server, unique("owner"))


@pytest.fixture
def repo(server: LiveServer, owner: TestUser) -> str:
    return make_repository(server, owner.username, unique("repo"), public=False)


@pytest.fixture
def pusher(server: LiveServer, owner: TestUser, repo: str) -> Iterator[httpx.Client]:
    """A /v2 client holding pull+push on `repo`."""
    token = token_for(server, (owner.username, owner.password), pull_push(repo))
    with v2_client(server, token) as client:
        yield client
