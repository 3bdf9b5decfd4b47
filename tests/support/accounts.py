"""Creating accounts and credentials for tests directly in the server's database."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import httpx

from cargohold.auth.secrets import OAUTH_TOKEN_PREFIX_LENGTH, hash_token, random_code
from cargohold.db.models.accounts import OAuthAccessToken, Team, TeamMember, TeamRole, User
from cargohold.domain import accounts
from tests.support.server import LiveServer

DEFAULT_PASSWORD = "password123"


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


@dataclass
class TestUser:
    username: str
    password: str
    email: str
    id: int


def create_user(
    server: LiveServer, username: str | None = None, *, password: str = DEFAULT_PASSWORD
) -> TestUser:
    username = username or unique("user")
    email = f"{username}@example.com"
    with server.db() as session:
        user = accounts.create_user(
            session,
            server.settings,
            username=username,
            email=email,
            password=password,
            verified=True,
        )
        session.flush()
        user_id = user.id
    return TestUser(username, password, email, user_id)


def create_organization(server: LiveServer, owner: TestUser, name: str | None = None) -> str:
    """An organization with an `owners` team holding the owner (direct DB write for fixtures)."""
    name = name or unique("org")
    with server.db() as session:
        org = User(
            username=name,
            email=None,
            organization=True,
            verified=True,
            tag_expiration_s=server.settings.default_tag_expiration_s,
        )
        session.add(org)
        session.flush()
        team = Team(organization_id=org.id, name="owners", role=TeamRole.admin)
        session.add(team)
        session.flush()
        session.add(TeamMember(team_id=team.id, user_id=owner.id))
    return name


def issue_token(server: LiveServer, username: str, scopes: str) -> str:
    """An OAuth bearer token for `username` with the given scopes (no application)."""
    prefix = random_code(OAUTH_TOKEN_PREFIX_LENGTH)
    secret = random_code(20)
    with server.db() as session:
        user = session.query(User).filter_by(username=username).one()
        session.add(
            OAuthAccessToken(
                authorized_user_id=user.id,
                scope=scopes,
                token_name=prefix,
                token_code_hash=hash_token(secret),
            )
        )
    return prefix + secret


def bearer_client(server: LiveServer, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


ALL_SCOPES = "repo:read repo:write repo:admin repo:create user:read user:admin org:admin super:user"
