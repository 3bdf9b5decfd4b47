"""Building organizations with teams, robots and repository grants for tests (direct DB writes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select

from cargohold.auth.secrets import SecretBox, hash_token, random_code
from cargohold.db.models.accounts import RobotAccountToken, Team, TeamMember, TeamRole, User
from cargohold.db.models.audit import LogEntry
from cargohold.db.models.registry import Repository, RepositoryPermission, Role
from tests.support.accounts import (
    ALL_SCOPES,
    TestUser,
    bearer_client,
    create_organization,
    issue_token,
    unique,
)
from tests.support.server import LiveServer


def passwordless_user(server: LiveServer) -> TestUser:
    """A person who signs in only with bearer tokens: no bcrypt round, so fixtures stay fast."""
    username = unique("user")
    with server.db() as session:
        user = User(username=username, email=f"{username}@example.com", verified=True)
        session.add(user)
        session.flush()
        return TestUser(username, "", user.email, user.id)


def create_team(server: LiveServer, org: str, name: str, role: str = "member") -> None:
    with server.db() as session:
        organization = session.scalar(select(User).where(User.username == org))
        session.add(Team(organization_id=organization.id, name=name, role=TeamRole(role)))


def add_to_team(server: LiveServer, org: str, team: str, username: str) -> None:
    with server.db() as session:
        team_row = session.scalar(
            select(Team)
            .join(User, User.id == Team.organization_id)
            .where(User.username == org, Team.name == team)
        )
        account = session.scalar(select(User).where(User.username == username))
        session.add(TeamMember(team_id=team_row.id, user_id=account.id))


def create_robot(server: LiveServer, namespace: str, short_name: str = "bot") -> tuple[str, str]:
    """A robot `namespace+short_name` and its token."""
    name = f"{namespace}+{short_name}"
    token = random_code(64)
    with server.db() as session:
        robot = User(username=name, robot=True, verified=True)
        session.add(robot)
        session.flush()
        session.add(
            RobotAccountToken(
                robot_id=robot.id,
                token_hash=hash_token(token),
                token_encrypted=SecretBox(server.settings.DATABASE_SECRET_KEY).encrypt(token),
            )
        )
    return name, token


def create_repository(
    server: LiveServer, namespace: str, name: str, *, public: bool = False
) -> int:
    with server.db() as session:
        owner = session.scalar(select(User).where(User.username == namespace))
        repository = Repository(namespace_user_id=owner.id, name=name, public=public)
        session.add(repository)
        session.flush()
        return repository.id


def grant_team(server: LiveServer, org: str, repository: str, team: str, role: str) -> None:
    with server.db() as session:
        organization = session.scalar(select(User).where(User.username == org))
        repo = session.scalar(
            select(Repository).where(
                Repository.namespace_user_id == organization.id, Repository.name == repository
            )
        )
        team_row = session.scalar(
            select(Team).where(Team.organization_id == organization.id, Team.name == team)
        )
        session.add(
            RepositoryPermission(repository_id=repo.id, team_id=team_row.id, role=Role(role))
        )


def audit_entries(server: LiveServer, org: str, kind: str) -> list[dict]:
    """The metadata of the organization's audit entries of one kind, oldest first, without the
    OAuth token details every bearer-authenticated entry carries."""
    with server.db() as session:
        organization = session.scalar(select(User).where(User.username == org))
        rows = session.scalars(
            select(LogEntry.metadata_json)
            .where(LogEntry.account_id == organization.id, LogEntry.kind == kind)
            .order_by(LogEntry.id)
        ).all()
    entries = [json.loads(row) for row in rows]
    return [
        {k: v for k, v in e.items() if not k.startswith("oauth_token") and k != "request_id"}
        for e in entries
    ]


def team_member_names(server: LiveServer, org: str, team: str) -> set[str]:
    with server.db() as session:
        organization = session.scalar(select(User).where(User.username == org))
        return set(
            session.scalars(
                select(User.username)
                .join(TeamMember, TeamMember.user_id == User.id)
                .join(Team, Team.id == TeamMember.team_id)
                .where(Team.organization_id == organization.id, Team.name == team)
            )
        )


@dataclass
class OrgWorld:
    """An organization with an admin (in `owners`), a reader (in `readers`), a robot and an
    outsider, each with a bearer client carrying every scope."""

    server: LiveServer
    org: str
    owner: TestUser
    reader: TestUser
    outsider: TestUser
    robot: str
    robot_token: str
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, who: str) -> httpx.Client:
        return self.clients[who]


@contextmanager
def org_world(server: LiveServer, superuser: TestUser | None = None) -> Iterator[OrgWorld]:
    owner = passwordless_user(server)
    reader = passwordless_user(server)
    outsider = passwordless_user(server)
    org = create_organization(server, owner, unique("org"))
    create_team(server, org, "readers", "member")
    add_to_team(server, org, "readers", reader.username)
    robot, robot_token = create_robot(server, org)
    world = OrgWorld(server, org, owner, reader, outsider, robot, robot_token)
    people = {"owner": owner, "reader": reader, "outsider": outsider}
    if superuser is not None:
        people["superuser"] = superuser
    for role, person in people.items():
        world.clients[role] = bearer_client(
            server, issue_token(server, person.username, ALL_SCOPES)
        )
    world.clients["anonymous"] = httpx.Client(base_url=server.url, timeout=30)
    world.clients["robot"] = httpx.Client(
        base_url=server.url, auth=(robot, robot_token), timeout=30
    )
    try:
        yield world
    finally:
        for client in world.clients.values():
            client.close()


def grant_user(server: LiveServer, org: str, repository: str, username: str, role: str) -> None:
    with server.db() as session:
        organization = session.scalar(select(User).where(User.username == org))
        repo = session.scalar(
            select(Repository).where(
                Repository.namespace_user_id == organization.id, Repository.name == repository
            )
        )
        account = session.scalar(select(User).where(User.username == username))
        session.add(
            RepositoryPermission(repository_id=repo.id, user_id=account.id, role=Role(role))
        )
