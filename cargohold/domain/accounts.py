"""Accounts: creating, changing and deleting users; looking up namespaces."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cargohold.auth.context import AuthContext
from cargohold.auth.secrets import hash_password
from cargohold.config import Settings
from cargohold.db.models.accounts import (
    TEAM_ROLE_RANK,
    RobotAccountToken,
    Team,
    TeamMember,
    TeamRole,
    User,
    new_uuid,
)
from cargohold.db.models.registry import Repository
from cargohold.domain.audit import log_action
from cargohold.domain.errors import Invalid, ModelError, NotFound

NAME_PATTERN = r"^([a-z0-9]+(?:[._-][a-z0-9]+)*)$"
NAME_RE = re.compile(NAME_PATTERN)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PASSWORD_RULE = (
    "Invalid password, password must be at least 8 characters and contain no whitespace."
)
MAX_EMAIL_LENGTH = 254


class AccountError(Invalid):
    """A rule about accounts was broken; the message is Quay's wording where it has one."""


class AccountRefused(ModelError):
    """An account rule as Quay's data model words it (the superuser panel, account deletion)."""


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a namespace (user, org or robot short name), or None."""
    if not (2 <= len(name) <= 255):
        return "Namespace must be between 2 and 255 characters in length"
    if not NAME_RE.match(name):
        return f"Namespace must match expression {NAME_PATTERN}"
    return None


def validate_username(name: str) -> None:
    problem = name_problem(name)
    if problem:
        raise AccountError(f"Invalid namespace {name}: {problem}")


def validate_password(password: str) -> None:
    if len(password) < 8 or any(ch.isspace() for ch in password):
        raise AccountError(PASSWORD_RULE)


def is_valid_email(email: str) -> bool:
    if len(email) > MAX_EMAIL_LENGTH or email.count("@") != 1:
        return False
    local, domain = email.split("@")
    labels = domain.split(".")
    return bool(local) and len(labels) >= 2 and all(labels) and not any(c.isspace() for c in email)


def validate_email(email: str) -> None:
    if not is_valid_email(email):
        raise AccountError(f"Invalid email address: {email}")


def namespace_taken(session: Session, name: str) -> bool:
    return session.scalar(select(func.count()).select_from(User).where(User.username == name)) > 0


def get_namespace(session: Session, name: str) -> User | None:
    """A user or organization (not a robot, not deleted) by name."""
    return session.scalar(
        select(User).where(User.username == name, User.robot.is_(False), User.deleted.is_(False))
    )


def get_user(session: Session, username: str) -> User | None:
    """A person (not an organization or robot, not deleted) by username."""
    return session.scalar(
        select(User).where(
            User.username == username,
            User.robot.is_(False),
            User.organization.is_(False),
            User.deleted.is_(False),
        )
    )


def person_named(session: Session, username: str) -> User:
    """The person, or NotFound."""
    user = get_user(session, username)
    if user is None:
        raise NotFound()
    return user


def get_organization(session: Session, name: str) -> User | None:
    return session.scalar(
        select(User).where(
            User.username == name, User.organization.is_(True), User.deleted.is_(False)
        )
    )


def user_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def _check_name_available(session: Session, username: str) -> None:
    existing = session.scalar(select(User).where(User.username == username))
    if existing is None:
        return
    if existing.deleted:
        raise AccountError("Username is not available")
    if existing.organization:
        raise AccountError(
            f"Username has already been taken by an organization and cannot be reused: {username}"
        )
    raise AccountError(f"Username has already been taken by user cannot be reused: {username}")


def email_in_use(session: Session, email: str, *, exclude: User | None = None) -> bool:
    query = select(User.id).where(User.email == email, User.organization.is_(False))
    if exclude is not None:
        query = query.where(User.id != exclude.id)
    return session.scalar(query) is not None


def create_user(
    session: Session,
    settings: Settings,
    *,
    username: str,
    email: str | None,
    password: str | None,
    verified: bool = False,
) -> User:
    """A new person account. Without an email address a random id stands in for it, as in Quay."""
    validate_username(username)
    if password is not None:
        validate_password(password)
    if email is not None:
        validate_email(email)
    elif settings.FEATURE_MAILING:
        raise AccountError("Invalid email address: None")
    _check_name_available(session, username)
    if email is not None and email_in_use(session, email):
        raise AccountError(f"Email has already been used: {email}")
    user = User(
        username=username,
        email=email if email is not None else str(uuid.uuid4()),
        password_hash=hash_password(password) if password else None,
        verified=verified,
        tag_expiration_s=settings.default_tag_expiration_s,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        # A concurrent request took the name or address first; nothing of ours is kept.
        session.rollback()
        raise AccountError(
            f"Username has already been taken by user cannot be reused: {username}"
        ) from exc
    return user


@dataclass(frozen=True)
class NewAccount:
    """The name, address and password a new person account starts with."""

    username: str
    email: str | None
    password: str | None


def register(
    session: Session,
    settings: Settings,
    new: NewAccount,
    *,
    verified: bool,
    ip: str | None,
    auth: AuthContext | None = None,
    metadata: dict[str, str] | None = None,
) -> User:
    """Create a person account and its `user_create` entry; without `auth` the new user is
    its own performer (self sign-up, first user)."""
    user = create_user(
        session,
        settings,
        username=new.username,
        email=new.email,
        password=new.password,
        verified=verified,
    )
    log_action(
        session,
        "user_create",
        namespace=user,
        performer=None if auth is not None else user,
        auth=auth,
        ip=ip,
        metadata={"email": new.email, "username": user.username, **(metadata or {})},
    )
    return user


def end_sessions(user: User) -> None:
    """Every browser session carries the user's session token; a new one ends them all."""
    user.session_token = new_uuid()


def change_password(user: User, password: str) -> None:
    """A new password also clears the failed-login record: the old guesses are moot."""
    validate_password(password)
    user.password_hash = hash_password(password)
    user.invalid_login_attempts = 0
    user.last_invalid_login = None
    end_sessions(user)


def change_email(session: Session, user: User, email: str) -> str | None:
    """Replace the address (verified, as an admin or the user typed it); returns the old one."""
    if email_in_use(session, email, exclude=user):
        raise AccountError("E-mail address already used")
    old = user.email
    user.email = email
    user.verified = True
    return old


def sole_admin_organizations(session: Session, user: User) -> list[str]:
    """Organizations in which `user` is the only member of every admin team."""
    admin_orgs = session.scalars(
        select(User)
        .join(Team, Team.organization_id == User.id)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.user_id == user.id, Team.role == TeamRole.admin, User.deleted.is_(False))
        .distinct()
    ).all()
    if not admin_orgs:
        return []
    other_admins = set(
        session.scalars(
            select(Team.organization_id)
            .join(TeamMember, TeamMember.team_id == Team.id)
            .join(User, User.id == TeamMember.user_id)
            .where(
                Team.organization_id.in_([org.id for org in admin_orgs]),
                Team.role == TeamRole.admin,
                TeamMember.user_id != user.id,
                User.robot.is_(False),
            )
        ).all()
    )
    return sorted(org.username for org in admin_orgs if org.id not in other_admins)


def mark_deleted(session: Session, user: User) -> None:
    """Take a user out of service at once; the name stays reserved until GC reclaims it.

    Robots, team memberships and repositories go immediately (repositories are marked for
    the garbage collector); the email address is freed for reuse.
    """
    robot_ids = select(User.id).where(
        User.robot.is_(True), User.username.startswith(f"{user.username}+", autoescape=True)
    )
    session.execute(update(User).where(User.id.in_(robot_ids)).values(deleted=True, enabled=False))
    session.query(RobotAccountToken).filter(RobotAccountToken.robot_id.in_(robot_ids)).delete(
        synchronize_session=False
    )
    session.query(TeamMember).filter(
        (TeamMember.user_id == user.id) | TeamMember.user_id.in_(robot_ids)
    ).delete(synchronize_session=False)
    session.execute(
        update(Repository).where(Repository.namespace_user_id == user.id).values(deleted=True)
    )
    user.deleted = True
    user.enabled = False
    user.email = None
    end_sessions(user)


def delete_user(session: Session, user: User, *, auth: AuthContext, ip: str | None) -> None:
    """Delete a person's account at once, with its audit entry (written while it still has
    its name)."""
    log_action(
        session,
        "user_delete",
        namespace=user,
        auth=auth,
        ip=ip,
        metadata={"username": user.username},
    )
    mark_deleted(session, user)


def organization_roles(session: Session, user: User) -> list[tuple[User, TeamRole]]:
    """The organizations a user belongs to through any team, with their best role in each."""
    rows = session.execute(
        select(User, Team.role)
        .join(Team, Team.organization_id == User.id)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.user_id == user.id, User.deleted.is_(False))
        .order_by(User.username)
    ).all()
    best: dict[int, tuple[User, TeamRole]] = {}
    for org, role in rows:
        current = best.get(org.id)
        if current is None or TEAM_ROLE_RANK[role] > TEAM_ROLE_RANK[current[1]]:
            best[org.id] = (org, role)
    return list(best.values())


def rename_user(session: Session, user: User, new_name: str) -> str:
    """Rename a user and its robots (`new+short`); returns the old name."""
    validate_username(new_name)
    if namespace_taken(session, new_name):
        raise AccountError("Username is already in use")
    old = user.username
    robots = session.scalars(
        select(User).where(
            User.robot.is_(True), User.username.startswith(f"{old}+", autoescape=True)
        )
    ).all()
    for robot in robots:
        robot.username = new_name + robot.username[len(old) :]
    user.username = new_name
    return old


def list_users(
    session: Session, *, include_disabled: bool, start_id: int = 0, limit: int | None = None
) -> list[User]:
    """Person accounts in id order from `start_id`; without `include_disabled` only enabled ones."""
    query = (
        select(User)
        .where(
            User.organization.is_(False),
            User.robot.is_(False),
            User.deleted.is_(False),
            User.id >= start_id,
        )
        .order_by(User.id)
    )
    if not include_disabled:
        query = query.where(User.enabled.is_(True))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query).all())


def get_account(session: Session, name: str) -> User | None:
    """Any account by name: person, organization or robot (`ns+short`)."""
    return session.scalar(select(User).where(User.username == name))
