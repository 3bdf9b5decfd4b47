"""Browser-style sessions for tests: /csrf_token, then /api/v1/signin, then X-CSRF-Token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.support.server import LiveServer


@contextmanager
def csrf_client(server: LiveServer) -> Iterator[httpx.Client]:
    """An anonymous client holding a session cookie and its CSRF token in X-CSRF-Token."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        response = client.get("/csrf_token")
        response.raise_for_status()
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


def signin(client: httpx.Client, username: str, password: str) -> httpx.Response:
    """Sign in on a CSRF client and switch it to the token the server hands out next."""
    response = client.post("/api/v1/signin", json={"username": username, "password": password})
    if response.status_code == 200:
        client.headers["X-CSRF-Token"] = response.headers["X-Next-CSRF-Token"]
    return response


@contextmanager
def session_client(server: LiveServer, username: str, password: str) -> Iterator[httpx.Client]:
    """A signed-in browser session, ready for mutating calls."""
    with csrf_client(server) as client:
        response = signin(client, username, password)
        assert response.status_code == 200, response.text
        yield client
