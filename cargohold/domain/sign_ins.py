"""Signing in and out: the audit entries of logins, refused logins and logouts."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.domain.accounts import end_sessions
from cargohold.domain.audit import log_action


def record_login_failure(
    session: Session,
    settings: Settings,
    user: User,
    *,
    ip: str | None,
    useragent: str | None,
    message: str,
) -> None:
    """A refused password for a known person, when the installation audits those."""
    if not settings.ACTION_LOG_AUDIT_LOGIN_FAILURES:
        return
    log_action(
        session,
        "login_failure",
        namespace=user,
        ip=ip,
        metadata={"type": "quayauth", "kind": "user", "useragent": useragent, "message": message},
    )


def record_login(
    session: Session,
    settings: Settings,
    user: User,
    *,
    method: str,
    ip: str | None,
    useragent: str | None,
) -> None:
    """A successful login (`method`: quayauth, recovery), when the installation audits those."""
    if not settings.ACTION_LOG_AUDIT_LOGINS:
        return
    log_action(
        session,
        "login_success",
        namespace=user,
        performer=user,
        ip=ip,
        metadata={"type": method, "useragent": useragent},
    )


def sign_out(session: Session, user: User, *, auth: AuthContext, ip: str | None) -> None:
    """End every session of the user, audited."""
    end_sessions(user)
    log_action(session, "logout_success", namespace=user, auth=auth, ip=ip)
