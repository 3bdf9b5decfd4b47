"""Accounts: creating and looking up users, organizations and robots."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cargohold.auth.secrets import hash_password
from cargohold.config import Settings
from cargohold.db.models.accounts import User

NAME_RE = re.compile(r"^([a-z0-9]+(?:[._-][a-z0-9]+)*)$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AccountError(Exception):
    """A rule about accounts was broken; the message is Quay's wording where it has one."""


def validate_username(name: str) -> None:
    if not (2 <= len(name) <= 255) or not NAME_RE.match(name):
        raise AccountError(
            "Invalid namespace "
            f"{name}: namespace must match [a-z0-9]+(?:[._-][a-z0-9]+)* and be 2-255 characters"
        )


def validate_password(password: str) -> None:
    if len(password) < 8 or any(ch.isspace() for ch in password):
        raise AccountError("Password must be at least 8 characters and contain no whitespace.")


def validate_email(email: str) -> None:
    if not EMAIL_RE.match(email) or len(email) > 255:
        raise AccountError("Invalid email address: " + email)


def namespace_taken(session: Session, name: str) -> bool:
    return session.scalar(select(func.count()).select_from(User).where(User.username == name)) > 0


def get_namespace(session: Session, name: str) -> User | None:
    """A user or organization (not a robot, not deleted) by name."""
    return session.scalar(
        select(User).where(User.username == name, User.robot.is_(False), User.deleted.is_(False))
    )


def create_user(
    session: Session,
    settings: Settings,
    *,
    username: str,
    email: str | None,
    password: str | None,
    verified: bool = False,
) -> User:
    validate_username(username)
    if password is not None:
        validate_password(password)
    if email is not None:
        validate_email(email)
    if namespace_taken(session, username):
        raise AccountError("The username already exists")
    if email is not None and session.scalar(select(User.id).where(User.email == email)):
        raise AccountError("The email address is already used")
    user = User(
        username=username,
        email=email,
        password_hash=hash_password(password) if password else None,
        verified=verified,
        tag_expiration_s=settings.default_tag_expiration_s,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise AccountError("The username already exists") from exc
    return user
