"""A person's own account: signing up, the installation's first user, changing details, client
keys and deleting the account. Each change writes its own audit entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from cargohold.auth.context import AuthContext
from cargohold.auth.credentials import check_password, encrypt_password
from cargohold.auth.secrets import SecretBox, random_code
from cargohold.config import Settings
from cargohold.db.models.accounts import OAuthApplication, User
from cargohold.domain import accounts, teams
from cargohold.domain.access_tokens import issue_access_token
from cargohold.domain.audit import log_action
from cargohold.domain.email_confirmation import send_confirmation
from cargohold.domain.errors import Invalid, ModelError
from cargohold.domain.organizations import InvalidTagExpiration

INITIALIZE_TOKEN_SCOPES = (
    "org:admin repo:admin repo:create repo:read repo:write super:user user:admin user:read"
)
INITIALIZE_TOKEN_LIFETIME_S = 9000
CLIENT_ID_LENGTH = 20
INVALID_CREDENTIALS = "Invalid Username or Password"

AuditWriter = Callable[[str, dict[str, Any]], None]


class InitializeRefused(ModelError):
    """The first user could not be created (Quay answers with a `{"message"}` body)."""


def sign_up(
    session: Session,
    settings: Settings,
    new: accounts.NewAccount,
    *,
    invite_code: str | None,
    ip: str | None,
) -> User:
    """A new person account created by its owner; unverified (and mailed a link) when the
    installation sends mail, unless a team invite already proves the address."""
    if settings.FEATURE_INVITE_ONLY_USER_CREATION:
        raise Invalid("Cannot create non-invited user")
    if accounts.get_user(session, new.username) is not None:
        raise Invalid("The username already exists")
    if settings.FEATURE_MAILING and not new.email:
        raise Invalid("Email address is required")
    user = accounts.register(session, settings, new, verified=not settings.FEATURE_MAILING, ip=ip)
    teams.invite_confirms_email(session, invite_code, user)
    if not user.verified:
        send_confirmation(session, settings, user)
    return user


def initialize_first_user(
    session: Session,
    settings: Settings,
    new: accounts.NewAccount,
    *,
    with_token: bool,
    ip: str | None,
) -> tuple[User, str | None]:
    """The first user of an empty installation and, when asked for, an access token for it."""
    try:
        user = accounts.register(session, settings, new, verified=True, ip=ip)
    except accounts.AccountError as exc:
        raise InitializeRefused(f"Failed to initialize user: {exc.message}") from exc
    token = _initial_access_token(session, settings, user) if with_token else None
    return user, token


def _initial_access_token(session: Session, settings: Settings, user: User) -> str:
    """Quay's "automation" application owned by the first user, and a short-lived token."""
    client_id = user.username if len(user.username) <= CLIENT_ID_LENGTH else random_code(20)
    application = OAuthApplication(
        organization_id=user.id,
        client_id=client_id,
        client_secret_encrypted=SecretBox(settings.DATABASE_SECRET_KEY).encrypt(random_code(40)),
        name="automation",
        description="Application token generated via /api/v1/user/initialize",
    )
    session.add(application)
    session.flush()
    _, code = issue_access_token(
        session,
        user,
        INITIALIZE_TOKEN_SCOPES,
        application=application,
        expires_in_s=INITIALIZE_TOKEN_LIFETIME_S,
    )
    return code


@dataclass
class DetailChanges:
    """What a person asked to change on their account; None leaves a field alone."""

    password: str | None = None
    invoice_email: bool | None = None
    email: str | None = None
    tag_expiration_s: int | None = None
    username: str | None = None
    invoice_email_address: str | None = None
    set_invoice_email_address: bool = False
    # Profile fields the request named (given_name, family_name, company, location).
    profile: dict[str, str | None] = field(default_factory=dict)


def change_details(
    session: Session,
    settings: Settings,
    user: User,
    changes: DetailChanges,
    *,
    auth: AuthContext,
    ip: str | None,
) -> None:
    """Apply the changes in Quay's order, each with its audit entry (all or nothing)."""

    def log(kind: str, metadata: dict[str, Any]) -> None:
        log_action(session, kind, namespace=user, auth=auth, ip=ip, metadata=metadata)

    if changes.password is not None:
        accounts.change_password(user, changes.password)
        log("account_change_password", {})
    _change_invoicing(user, changes, log)
    _change_tag_expiration(settings, user, changes.tag_expiration_s, log)
    if changes.set_invoice_email_address:
        _change_invoice_address(user, changes, log)
    if changes.email is not None and changes.email != user.email:
        _change_email(session, settings, user, changes.email, log)
    if settings.FEATURE_USER_METADATA and changes.profile:
        for name, value in changes.profile.items():
            setattr(user, name, value)
        log("user_change_metadata", changes.profile)
    if (
        changes.username is not None
        and changes.username != user.username
        and settings.FEATURE_USER_RENAME
    ):
        old_username = accounts.rename_user(session, user, changes.username)
        log("user_change_name", {"old_username": old_username})


def _change_invoicing(user: User, changes: DetailChanges, log: AuditWriter) -> None:
    if changes.invoice_email is not None:
        user.invoice_email = changes.invoice_email
        log("user_change_invoicing", {"invoice_email": changes.invoice_email})


def _change_tag_expiration(
    settings: Settings, user: User, tag_expiration_s: int | None, log: AuditWriter
) -> None:
    if (
        tag_expiration_s is None
        or not settings.FEATURE_CHANGE_TAG_EXPIRATION
        or tag_expiration_s == user.tag_expiration_s
    ):
        return
    if tag_expiration_s not in settings.tag_expiration_options_s:
        raise InvalidTagExpiration("Invalid tag expiration option")
    user.tag_expiration_s = tag_expiration_s
    log("user_change_tag_expiration", {"tag_expiration": tag_expiration_s})


def _change_invoice_address(user: User, changes: DetailChanges, log: AuditWriter) -> None:
    address = changes.invoice_email_address or None
    if address != user.invoice_email_address:
        user.invoice_email_address = address
        log("user_change_invoicing", {"invoice_email_address": address})


def _change_email(
    session: Session, settings: Settings, user: User, email: str, log: AuditWriter
) -> None:
    if settings.FEATURE_MAILING:
        # The new address applies once its owner follows the mailed link.
        accounts.validate_email(email)
        if accounts.email_in_use(session, email, exclude=user):
            raise accounts.AccountError("E-mail address already used")
        send_confirmation(session, settings, user, new_email=email)
        return
    old_email = accounts.change_email(session, user, email)
    log("user_change_email", {"email": email, "old_email": old_email})


def client_key(
    session: Session,
    settings: Settings,
    user: User,
    password: str,
    *,
    auth: AuthContext,
    ip: str | None,
) -> str:
    """An encrypted form of the password, usable as a registry password; audited."""
    if not check_password(session, settings, user, password):
        raise Invalid(INVALID_CREDENTIALS)
    log_action(session, "user_generate_client_key", namespace=user, auth=auth, ip=ip)
    return encrypt_password(settings, password)


def delete_own_account(session: Session, user: User, *, auth: AuthContext, ip: str | None) -> None:
    """Delete the caller's account, unless an organization would be left without an admin."""
    sole = accounts.sole_admin_organizations(session, user)
    if sole:
        raise accounts.AccountRefused(
            f"Cannot delete {user.username} as you are the only admin for organizations: "
            + ", ".join(sole)
        )
    accounts.delete_user(session, user, auth=auth, ip=ip)
