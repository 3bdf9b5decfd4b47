"""Browser-style sessions for tests: /csrf_token, then /api/v1/signin, then X-CSRF-Token."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from cargohold.auth.sessions import encode_session, login_session
from cargohold.db.models.accounts import User
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


def after_login_failure(login: Callable[[], httpx.Response]) -> httpx.Response:
    """A login right after a deliberate failure: the account backs off for a moment (429 with
    Retry-After), so wait as told and log in again."""
    response = login()
    if response.status_code == 429:
        time.sleep(int(response.headers["Retry-After"]))
        response = login()
    return response


@contextmanager
def session_client(server: LiveServer, username: str, password: str) -> Iterator[httpx.Client]:
    """A signed-in browser session, ready for mutating calls."""
    with csrf_client(server) as client:
        response = signin(client, username, password)
        assert response.status_code == 200, response.text
        yield client


def stale_session_cookie(server: LiveServer, username: str, csrf: str) -> str:
    """A valid session cookie whose login is an hour old: past the fresh-login window."""
    with server.db() as session:
        user = session.scalar(select(User).where(User.username == username))
        data = {
            "user_uuid": user.uuid,
            "session_token": user.session_token,
            "login_time": time.time() - 3600,
            "csrf": csrf,
        }
    serializer = URLSafeTimedSerializer(server.settings.SECRET_KEY, salt="cargohold-session")
    return serializer.dumps(data)


def cookie_session(
    server: LiveServer, username: str, *, login_age_s: float = 0
) -> tuple[httpx.Client, str]:
    """A client holding a session cookie signed as the server would, and its CSRF token."""
    with server.db() as session:
        user = session.scalar(select(User).where(User.username == username))
        data = login_session(user.uuid, user.session_token)
    data["login_time"] = time.time() - login_age_s
    client = httpx.Client(base_url=server.url, timeout=30)
    client.cookies.set(server.settings.SESSION_COOKIE_NAME, encode_session(server.settings, data))
    return client, data["csrf"]
