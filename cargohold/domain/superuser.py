"""What only superusers do: renaming an organization with its robots, and managing people's
accounts (create with a generated password, change, delete)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cargohold.auth.context import AuthContext
from cargohold.auth.secrets import random_code
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.domain.accounts import (
    NAME_RE,
    AccountError,
    AccountRefused,
    NewAccount,
    change_email,
    change_password,
    delete_user,
    get_namespace,
    namespace_taken,
    register,
)
from cargohold.domain.audit import log_action
from cargohold.domain.email_confirmation import send_confirmation
from cargohold.domain.errors import Invalid, ModelError, NotFound
from cargohold.domain.organizations import get_organization, name_pending_deletion

GENERATED_PASSWORD_LENGTH = 32
NAME_TAKEN = "A user or organization with this name already exists"


@dataclass
class InstallUserChanges:
    """A superuser's changes to a person's account; None leaves a field alone."""

    password: str | None = None
    email: str | None = None
    enabled: bool | None = None


class RenameError(ModelError):
    """The new name is malformed (Quay answers with a data-model message)."""


class NameTaken(Invalid):
    """Another user or organization holds the name."""

    def __init__(self) -> None:
        super().__init__(NAME_TAKEN)


def rename_namespace(session: Session, namespace: User, new_name: str) -> None:
    """Rename a namespace and its robots (`old+bot` becomes `new+bot`) in the caller's transaction."""
    if not (2 <= len(new_name) <= 255) or not NAME_RE.match(new_name):
        raise RenameError(
            f"Invalid username {new_name}: Namespace must match expression "
            f"{NAME_RE.pattern} and be between 2 and 255 characters"
        )
    if namespace_taken(session, new_name) or name_pending_deletion(session, new_name):
        raise NameTaken()
    prefix = namespace.username + "+"
    robots = session.scalars(
        select(User).where(User.robot.is_(True), User.username.startswith(prefix, autoescape=True))
    ).all()
    for robot in robots:
        robot.username = f"{new_name}+{robot.username[len(prefix) :]}"
    namespace.username = new_name
    try:
        session.flush()
    except IntegrityError as exc:
        # A concurrent request took the name first.
        raise NameTaken() from exc


def rename_organization(
    session: Session,
    name: str,
    new_name: str | None,
    *,
    actor: User,
    auth: AuthContext,
    ip: str | None,
) -> User:
    """A superuser renames an organization; the entry is written even when the name stays."""
    org = get_organization(session, name)
    if org is None:
        if get_namespace(session, name) is not None:
            # A user's name: Quay's organization lookup fails as a data-model error.
            raise ModelError(f"Organization does not exist: {name}")
        raise NotFound()
    log_action(
        session,
        "org_change_name",
        namespace=org,
        auth=auth,
        ip=ip,
        metadata={"old_name": name, "new_name": new_name, "superuser": actor.username},
    )
    if new_name is not None and new_name != name:
        rename_namespace(session, org, new_name)
    return org


def create_install_user(
    session: Session,
    settings: Settings,
    *,
    username: str,
    email: str | None,
    actor: User,
    auth: AuthContext,
    ip: str | None,
) -> tuple[User, str]:
    """A person account made by a superuser, with a generated password (returned once)."""
    password = random_code(GENERATED_PASSWORD_LENGTH)
    try:
        user = register(
            session,
            settings,
            NewAccount(username, email, password),
            verified=not settings.FEATURE_MAILING,
            ip=ip,
            auth=auth,
            metadata={"superuser": actor.username},
        )
    except AccountError as exc:
        raise AccountRefused(exc.message) from exc
    if settings.FEATURE_MAILING:
        send_confirmation(session, settings, user)
    return user, password


def _refuse_superuser(settings: Settings, user: User, message: str) -> None:
    if settings.is_superuser_name(user.username, user.superuser):
        raise Invalid(message)


def change_install_user(
    session: Session,
    settings: Settings,
    user: User,
    changes: InstallUserChanges,
    *,
    actor: User,
    auth: AuthContext,
    ip: str | None,
) -> None:
    """Password, then email, then enabled, each with its audit entry; never a superuser."""
    _refuse_superuser(settings, user, "Cannot update a superuser")

    def log(kind: str, metadata: dict[str, Any]) -> None:
        metadata = {**metadata, "superuser": actor.username}
        log_action(session, kind, namespace=user, auth=auth, ip=ip, metadata=metadata)

    try:
        if changes.password is not None:
            log("user_change_password", {"username": user.username})
            change_password(user, changes.password)
        if changes.email is not None:
            old_email = change_email(session, user, changes.email)
            log("user_change_email", {"old_email": old_email, "email": changes.email})
    except AccountError as exc:
        raise AccountRefused(exc.message) from exc
    if changes.enabled is not None:
        log("user_enable" if changes.enabled else "user_disable", {"username": user.username})
        user.enabled = changes.enabled


def delete_install_user(
    session: Session, settings: Settings, user: User, *, auth: AuthContext, ip: str | None
) -> None:
    """A superuser deletes a person at once (even an organization's last admin)."""
    _refuse_superuser(settings, user, "Cannot delete a superuser")
    delete_user(session, user, auth=auth, ip=ip)
