"""Confirming email addresses by mailed link (FEATURE_MAILING)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargohold.auth.secrets import hash_token
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.models.confirmations import EmailConfirmation
from cargohold.domain.accounts import email_in_use
from cargohold.domain.audit import log_action
from cargohold.domain.email import OutgoingEmail, queue_email

CONFIRM_SUBJECT = "Please confirm your e-mail address"
CHANGED_SUBJECT = "Your e-mail address was changed"


def confirmation_link(settings: Settings, code: str) -> str:
    return f"{settings.server_url}/confirm?code={code}"


def send_confirmation(
    session: Session, settings: Settings, user: User, new_email: str | None = None
) -> None:
    """Mail a confirmation link to the account's address, or to the address it wants next."""
    code = secrets.token_urlsafe(32)
    session.add(EmailConfirmation(user_id=user.id, code_hash=hash_token(code), new_email=new_email))
    recipient = new_email or user.email
    text = (
        f"Hello {user.username},\n\n"
        f"please confirm the e-mail address {recipient} for your {settings.REGISTRY_TITLE} "
        f"account by opening this link:\n\n{confirmation_link(settings, code)}\n"
    )
    queue_email(session, settings, OutgoingEmail(recipient, CONFIRM_SUBJECT, text))


def confirm(
    session: Session, settings: Settings, code: str, *, ip: str | None
) -> tuple[User, str | None] | None:
    """Apply a confirmation code; returns the user and, for a changed address, the old one
    (the change is audited).

    None when the code is unknown, already used, or its new address is taken by now.
    """
    record = session.scalar(
        select(EmailConfirmation).where(
            EmailConfirmation.code_hash == hash_token(code), EmailConfirmation.pw_reset.is_(False)
        )
    )
    if record is None or record.user.deleted:
        return None
    user = record.user
    old_email = None
    if record.new_email is not None:
        if email_in_use(session, record.new_email, exclude=user):
            # Someone took the address meanwhile: the code can no longer be used.
            return None
        old_email = user.email
        user.email = record.new_email
        if old_email is not None:
            log_action(
                session,
                "user_change_email",
                namespace=user,
                performer=user,
                ip=ip,
                metadata={"email": user.email, "old_email": old_email},
            )
        if old_email:
            text = (
                f"Hello {user.username},\n\nthe e-mail address of your {settings.REGISTRY_TITLE} "
                f"account was changed from {old_email} to {record.new_email}.\n"
            )
            queue_email(session, settings, OutgoingEmail(old_email, CHANGED_SUBJECT, text))
    user.verified = True
    session.delete(record)
    return user, old_email
