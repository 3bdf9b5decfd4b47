"""Password recovery by mail: a one-time, short-lived sign-in link (FEATURE_MAILING).

A request names an e-mail address. A person with that address gets the link; the admins of
organizations registered with it are named in the same message, so that whoever holds the
address can reach them.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargohold.auth.secrets import hash_token
from cargohold.config import Settings
from cargohold.db.base import begin_write, utcnow
from cargohold.db.models.accounts import Team, TeamMember, TeamRole, User
from cargohold.db.models.confirmations import EmailConfirmation
from cargohold.domain.email import OutgoingEmail, queue_email

RECOVERY_SUBJECT = "Account recovery"


@dataclass
class RecoveryOutcome:
    """What a recovery request found: a person to mail a link to, organizations to name."""

    person: User | None
    organizations: list[User] = field(default_factory=list)


def recovery_link(settings: Settings, code: str) -> str:
    return f"{settings.server_url}/recovery?code={code}"


def _person_with_email(session: Session, email: str) -> User | None:
    return session.scalar(
        select(User).where(
            User.email == email,
            User.organization.is_(False),
            User.robot.is_(False),
            User.deleted.is_(False),
        )
    )


def _organizations_with_email(session: Session, email: str) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .where(User.email == email, User.organization.is_(True), User.deleted.is_(False))
            .order_by(User.username)
        )
    )


def _admin_names(session: Session, organization: User) -> list[str]:
    return list(
        session.scalars(
            select(User.username)
            .join(TeamMember, TeamMember.user_id == User.id)
            .join(Team, Team.id == TeamMember.team_id)
            .where(
                Team.organization_id == organization.id,
                Team.role == TeamRole.admin,
                User.robot.is_(False),
                User.deleted.is_(False),
            )
            .distinct()
            .order_by(User.username)
        )
    )


def _new_code(session: Session, user: User) -> str:
    code = secrets.token_urlsafe(32)
    session.add(EmailConfirmation(user_id=user.id, code_hash=hash_token(code), pw_reset=True))
    return code


def _message(
    session: Session, settings: Settings, email: str, code: str | None, orgs: list[User]
) -> OutgoingEmail:
    lines = [f"Someone asked to recover access to the {settings.REGISTRY_TITLE} account"]
    lines[0] += " registered to this e-mail address."
    if code is not None:
        minutes = settings.user_recovery_token_lifetime_s // 60
        lines += [
            "",
            "To choose a new password, sign in with this link (it works once, "
            f"for {minutes} minutes):",
            "",
            recovery_link(settings, code),
        ]
    for org in orgs:
        admins = ", ".join(_admin_names(session, org)) or "none"
        lines += ["", f"The organization {org.username} uses this address. Its admins: {admins}."]
    lines += ["", "If you did not ask for this, ignore this message: nothing has changed."]
    return OutgoingEmail(email, RECOVERY_SUBJECT, "\n".join(lines) + "\n")


def request_recovery(session: Session, settings: Settings, email: str) -> RecoveryOutcome:
    """Queue the recovery message for `email`, if any account uses it (in the caller's
    transaction)."""
    outcome = RecoveryOutcome(
        _person_with_email(session, email), _organizations_with_email(session, email)
    )
    if outcome.person is None and not outcome.organizations:
        return outcome
    code = _new_code(session, outcome.person) if outcome.person is not None else None
    queue_email(session, settings, _message(session, settings, email, code, outcome.organizations))
    return outcome


def send_recovery(session: Session, settings: Settings, user: User) -> None:
    """A superuser's request on behalf of a person: the link goes to their address."""
    code = _new_code(session, user)
    queue_email(session, settings, _message(session, settings, user.email, code, []))


def redeem(session: Session, settings: Settings, code: str) -> User | None:
    """The person a recovery code signs in (the code is used up), or None when it is unknown,
    used, expired or its account can no longer sign in."""
    begin_write(session)
    record = session.scalar(
        select(EmailConfirmation).where(
            EmailConfirmation.code_hash == hash_token(code), EmailConfirmation.pw_reset.is_(True)
        )
    )
    if record is None:
        return None
    session.delete(record)
    lifetime = dt.timedelta(seconds=settings.user_recovery_token_lifetime_s)
    user = record.user
    if record.created + lifetime < utcnow() or not user.enabled or user.deleted or user.robot:
        return None
    if user.organization:
        return None
    # Following the mailed link proves the address, as confirming it would.
    user.verified = True
    return user
