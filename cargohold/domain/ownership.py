"""Turning an account into an organization, and making someone an admin of an organization.

Quay uses both for a superuser taking ownership of a namespace, and the first for a user
converting their own account into an organization.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cargohold.auth.context import AuthContext
from cargohold.auth.credentials import CredentialsError, verify_user_password
from cargohold.config import Settings
from cargohold.db.base import begin_write
from cargohold.db.models.accounts import (
    AppSpecificToken,
    OAuthAccessToken,
    Team,
    TeamMember,
    TeamRole,
    User,
)
from cargohold.db.models.registry import RepositoryPermission
from cargohold.domain.accounts import end_sessions, get_namespace, sole_admin_organizations
from cargohold.domain.audit import log_action
from cargohold.domain.errors import Invalid, ModelError, NotFound
from cargohold.domain.organizations import OWNERS_TEAM

ADMIN_NOT_VALID = "The admin user credentials are not valid"
SUPERUSER_REFUSED = "Cannot take ownership of a superuser"


class ConversionRefused(ModelError):
    """This account cannot become an organization (Quay's data-model message)."""


def add_admin(session: Session, organization: User, user: User) -> None:
    """Put `user` in the organization's `owners` team (created if it was deleted)."""
    begin_write(session)
    owners = session.scalar(
        select(Team).where(Team.organization_id == organization.id, Team.name == OWNERS_TEAM)
    )
    if owners is None:
        owners = Team(organization_id=organization.id, name=OWNERS_TEAM, role=TeamRole.admin)
        session.add(owners)
        session.flush()
    member = session.scalar(
        select(TeamMember.id).where(TeamMember.team_id == owners.id, TeamMember.user_id == user.id)
    )
    if member is None:
        session.add(TeamMember(team_id=owners.id, user_id=user.id))
        session.flush()


def convert_to_organization(session: Session, account: User, admin: User) -> None:
    """Make a person's account an organization administered by `admin`.

    Nobody can sign in as the account any more: its password, sessions and tokens go. What
    only a person can hold goes too: its own repository permissions and team memberships.
    Its repositories and robots stay, now the organization's.
    """
    if account.robot:
        raise ConversionRefused("Cannot convert a robot into an organization")
    if account.organization:
        raise ConversionRefused("The account is already an organization")
    # Its team memberships go, so no organization may be left without an admin.
    orphaned = sole_admin_organizations(session, account)
    if orphaned:
        raise ConversionRefused(
            f"Cannot convert {account.username} as it is the only admin for organizations: "
            + ", ".join(orphaned)
        )
    begin_write(session)
    account.organization = True
    account.password_hash = None
    end_sessions(account)
    for model, column in (
        (RepositoryPermission, RepositoryPermission.user_id),
        (TeamMember, TeamMember.user_id),
        (OAuthAccessToken, OAuthAccessToken.authorized_user_id),
        (AppSpecificToken, AppSpecificToken.user_id),
    ):
        session.execute(delete(model).where(column == account.id))
    session.flush()
    add_admin(session, account, admin)


def convert_own_account(
    session: Session,
    settings: Settings,
    account: User,
    admin_name: str,
    admin_password: str,
    *,
    auth: AuthContext,
    ip: str | None,
) -> User:
    """A person turns their account into an organization administered by another person,
    whose credentials they give; returns that admin."""
    try:
        admin = verify_user_password(session, settings, admin_name, admin_password).user
    except CredentialsError as exc:
        raise Invalid(ADMIN_NOT_VALID, reason="invaliduser") from exc
    if admin is None or admin.robot or admin.organization:
        raise Invalid(ADMIN_NOT_VALID, reason="invaliduser")
    if admin.id == account.id:
        raise Invalid("The admin user is not valid", reason="invaliduser")
    convert_to_organization(session, account, admin)
    log_action(session, "account_convert", namespace=account, auth=auth, ip=ip)
    return admin


def take_ownership(
    session: Session,
    settings: Settings,
    namespace: str,
    *,
    actor: User,
    auth: AuthContext,
    ip: str | None,
) -> None:
    """A superuser becomes an admin of an organization; a person's account becomes one."""
    if settings.is_superuser_name(namespace):
        raise Invalid(SUPERUSER_REFUSED)
    entity = get_namespace(session, namespace)
    if entity is None:
        raise NotFound()
    if entity.superuser:
        raise Invalid(SUPERUSER_REFUSED)
    was_user = not entity.organization
    if was_user:
        convert_to_organization(session, entity, actor)
    else:
        add_admin(session, entity, actor)
    log_action(
        session,
        "take_ownership",
        namespace=actor,
        auth=auth,
        ip=ip,
        metadata={
            "entity_id": entity.id,
            "namespace": namespace,
            "was_user": was_user,
            "superuser": actor.username,
        },
    )
