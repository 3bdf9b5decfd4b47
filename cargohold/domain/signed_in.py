"""The user a signed-in browser session stands for."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargohold.db.models.accounts import User


def session_user(session: Session, user_uuid: str | None, session_token: str | None) -> User | None:
    """The enabled person the session cookie names, while the cookie's token is still theirs
    (signing out everywhere or changing the password replaces the token)."""
    if not user_uuid:
        return None
    user = session.scalar(select(User).where(User.uuid == user_uuid))
    if (
        user is None
        or user.organization
        or user.robot
        or user.deleted
        or not user.enabled
        or user.session_token != session_token
    ):
        return None
    return user
