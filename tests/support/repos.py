"""A cast of callers around one owner's repositories, for permission-matrix tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from sqlalchemy import select

from cargohold.db.models.accounts import User
from cargohold.db.models.registry import RepositoryPermission, Role
from cargohold.domain import repositories, robots
from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_user,
    issue_token,
    unique,
)
from tests.support.server import LiveServer

ROLES = ("owner", "reader", "writer", "admin", "stranger")


@dataclass
class Cast:
    server: LiveServer
    users: dict[str, TestUser]
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    @property
    def owner(self) -> TestUser:
        return self.users["owner"]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def grant(server: LiveServer, path: str, username: str, role: str) -> None:
    namespace, name = path.split("/", 1)
    with server.db() as session:
        repo = repositories.find_repository(session, namespace, name)
        user_id = session.scalar(select(User.id).where(User.username == username))
        session.add(RepositoryPermission(repository_id=repo.id, user_id=user_id, role=Role(role)))


def create_robot(server: LiveServer, owner: str, short: str | None = None) -> tuple[str, str]:
    """A robot of `owner` and its token."""
    with server.db() as session:
        namespace = session.scalar(select(User).where(User.username == owner))
        made = robots.create_robot(session, server.settings, namespace, short or unique("bot"))
        return made.user.username, made.token


def make_cast(server: LiveServer) -> Cast:
    users = {role: create_user(server, unique(role)) for role in ROLES}
    cast = Cast(server, users)
    for role, user in users.items():
        cast.clients[role] = bearer_client(server, issue_token(server, user.username, ALL_SCOPES))
    cast.clients["anonymous"] = httpx.Client(base_url=server.url, timeout=30)
    return cast


def share(cast: Cast, path: str) -> None:
    """Give the cast's reader, writer and admin their roles on a repository."""
    for role, granted in (("reader", "read"), ("writer", "write"), ("admin", "admin")):
        grant(cast.server, path, cast.users[role].username, granted)
