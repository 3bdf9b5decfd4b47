"""Robot accounts: `namespace+short` users whose 64-character token is their only credential.

The token is stored twice: hashed, to check registry logins, and encrypted, because admins may
read it back through the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cargohold.auth.context import AuthContext
from cargohold.auth.secrets import SecretBox, hash_token, random_code
from cargohold.config import Settings
from cargohold.db.models.accounts import RobotAccountToken, Team, TeamMember, User, new_uuid
from cargohold.db.models.registry import Repository, RepositoryPermission, Role
from cargohold.domain.accounts import name_problem
from cargohold.domain.audit import log_action
from cargohold.domain.errors import Invalid, ModelError

ROBOT_TOKEN_LENGTH = 64
NOT_FOUND_MESSAGE = "Could not find robot with specified username"


class RobotError(Invalid):
    """A robot rule was broken; the message is Quay's."""


class RobotNotFound(ModelError):
    def __init__(self) -> None:
        super().__init__(NOT_FOUND_MESSAGE)


@dataclass
class Robot:
    """A robot with its token record and (when asked for) the readable token."""

    user: User
    record: RobotAccountToken
    token: str | None = None

    @property
    def name(self) -> str:
        return self.user.username

    @property
    def short_name(self) -> str:
        return self.user.username.split("+", 1)[1]

    @property
    def metadata(self) -> dict[str, Any]:
        try:
            value = json.loads(self.record.unstructured_metadata or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


def _box(settings: Settings) -> SecretBox:
    return SecretBox(settings.DATABASE_SECRET_KEY)


def read_token(settings: Settings, record: RobotAccountToken) -> str | None:
    return _box(settings).decrypt(record.token_encrypted)


def _set_token(settings: Settings, record: RobotAccountToken) -> str:
    token = random_code(ROBOT_TOKEN_LENGTH)
    record.token_hash = hash_token(token)
    record.token_encrypted = _box(settings).encrypt(token)
    return token


def create_robot(
    session: Session,
    settings: Settings,
    namespace: User,
    short_name: str,
    *,
    description: str = "",
    metadata: dict[str, Any] | None = None,
) -> Robot:
    problem = name_problem(short_name)
    if problem:
        raise RobotError(f"The name for the robot '{short_name}' is invalid: {problem}")
    full_name = f"{namespace.username}+{short_name}"
    if session.scalar(select(User.id).where(User.username == full_name)) is not None:
        raise RobotError(f"Existing robot with name: {full_name}")
    user = User(username=full_name, email=None, robot=True, verified=True)
    session.add(user)
    session.flush()
    record = RobotAccountToken(
        robot_id=user.id,
        description=description,
        unstructured_metadata=json.dumps(metadata or {}),
        token_hash="",
        token_encrypted="",
    )
    token = _set_token(settings, record)
    session.add(record)
    session.flush()
    return Robot(user, record, token)


def add_robot(
    session: Session,
    settings: Settings,
    namespace: User,
    short_name: str,
    *,
    description: str,
    metadata: dict[str, Any] | None,
    auth: AuthContext,
    ip: str | None,
) -> Robot:
    """A robot created on a caller's request, with its audit entry."""
    robot = create_robot(
        session, settings, namespace, short_name, description=description, metadata=metadata
    )
    log_action(
        session,
        "create_robot",
        namespace=namespace,
        auth=auth,
        ip=ip,
        metadata={
            "robot": short_name,
            "description": description,
            "unstructured_metadata": metadata,
        },
    )
    return robot


def _robot_query(namespace: User):
    return (
        select(User, RobotAccountToken)
        .join(RobotAccountToken, RobotAccountToken.robot_id == User.id)
        .where(
            User.robot.is_(True),
            User.deleted.is_(False),
            User.username.startswith(f"{namespace.username}+", autoescape=True),
        )
    )


def get_robot(session: Session, namespace: User, short_name: str) -> Robot:
    row = session.execute(
        _robot_query(namespace).where(User.username == f"{namespace.username}+{short_name}")
    ).first()
    if row is None:
        raise RobotNotFound()
    return Robot(row[0], row[1])


def list_robots(session: Session, namespace: User, limit: int | None = None) -> list[Robot]:
    """The namespace's robots, most recently used first."""
    query = _robot_query(namespace).order_by(User.last_accessed.desc().nulls_last(), User.username)
    if limit is not None:
        # Databases take 64-bit limits at most; anything larger means "all of them".
        query = query.limit(min(max(limit, 0), 2**63 - 1))
    return [Robot(user, record) for user, record in session.execute(query).all()]


def regenerate_token(
    session: Session,
    settings: Settings,
    namespace: User,
    robot: Robot,
    *,
    auth: AuthContext,
    ip: str | None,
) -> Robot:
    """A new token for the robot (the old one stops working), audited."""
    robot.token = _set_token(settings, robot.record)
    robot.user.uuid = new_uuid()
    _log(session, "regenerate_robot_token", namespace, robot, auth=auth, ip=ip)
    return robot


def _log(
    session: Session,
    kind: str,
    namespace: User,
    robot: Robot,
    *,
    auth: AuthContext,
    ip: str | None,
    **metadata: Any,
) -> None:
    metadata["robot"] = robot.short_name
    log_action(session, kind, namespace=namespace, auth=auth, ip=ip, metadata=metadata)


def delete_robot(
    session: Session, namespace: User, robot: Robot, *, auth: AuthContext, ip: str | None
) -> None:
    """Remove a robot with its token, permissions and team memberships, audited."""
    _log(session, "delete_robot", namespace, robot, auth=auth, ip=ip)
    robot_id = robot.user.id
    session.execute(delete(RepositoryPermission).where(RepositoryPermission.user_id == robot_id))
    session.execute(delete(TeamMember).where(TeamMember.user_id == robot_id))
    session.execute(delete(RobotAccountToken).where(RobotAccountToken.robot_id == robot_id))
    session.execute(delete(User).where(User.id == robot_id))


def robot_teams(session: Session, robot_ids: list[int]) -> dict[int, list[Team]]:
    """Teams of several robots in one query."""
    result: dict[int, list[Team]] = {robot_id: [] for robot_id in robot_ids}
    if robot_ids:
        rows = session.execute(
            select(TeamMember.user_id, Team)
            .join(Team, Team.id == TeamMember.team_id)
            .where(TeamMember.user_id.in_(robot_ids))
            .order_by(Team.name)
        ).all()
        for robot_id, team in rows:
            result[robot_id].append(team)
    return result


def robot_repository_roles(
    session: Session, robot_ids: list[int]
) -> dict[int, list[tuple[Repository, Role]]]:
    """Direct repository permissions of several robots in one query."""
    result: dict[int, list[tuple[Repository, Role]]] = {robot_id: [] for robot_id in robot_ids}
    if robot_ids:
        rows = session.execute(
            select(RepositoryPermission.user_id, Repository, RepositoryPermission.role)
            .join(Repository, Repository.id == RepositoryPermission.repository_id)
            .where(RepositoryPermission.user_id.in_(robot_ids), Repository.deleted.is_(False))
            .order_by(Repository.name)
        ).all()
        for robot_id, repository, role in rows:
            result[robot_id].append((repository, role))
    return result
