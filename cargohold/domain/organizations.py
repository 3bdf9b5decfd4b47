"""Organizations: creation with their `owners` team, details, collaborators, deletion."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import (
    DeletedNamespace,
    OAuthApplication,
    Team,
    TeamMember,
    TeamRole,
    User,
)
from cargohold.db.models.registry import Repository, RepositoryPermission
from cargohold.domain import quota
from cargohold.domain.accounts import AccountError, validate_username
from cargohold.domain.audit import log_action
from cargohold.domain.errors import ModelError, NotFound
from cargohold.domain.queue import enqueue

OWNERS_TEAM = "owners"
NAMESPACE_GC_QUEUE = "namespace_gc"


class OrganizationError(AccountError):
    """An organization rule was broken; the message is what Quay says."""


class InvalidTagExpiration(ModelError):
    """A time-machine window outside the configured options (Quay's data-model message)."""


def is_valid_email(email: str) -> bool:
    """One `@`, a non-empty local part, a domain of at least two non-empty labels, <= 254 chars."""
    if not email or len(email) > 254 or email.count("@") != 1:
        return False
    local, domain = email.split("@")
    labels = domain.split(".")
    return bool(local) and len(labels) >= 2 and all(labels) and not any(c.isspace() for c in email)


def placeholder_email() -> str:
    """What an organization without a contact email stores (never shown)."""
    return str(uuid.uuid4())


def name_pending_deletion(session: Session, name: str) -> bool:
    return (
        session.scalar(
            select(DeletedNamespace.id).where(DeletedNamespace.original_username == name)
        )
        is not None
    )


def get_organization(session: Session, name: str) -> User | None:
    return session.scalar(
        select(User).where(
            User.username == name, User.organization.is_(True), User.deleted.is_(False)
        )
    )


def list_organizations(
    session: Session, *, start_id: int = 0, limit: int | None = None
) -> list[User]:
    """Organizations in id order from `start_id`, at most `limit` of them."""
    query = (
        select(User)
        .where(User.organization.is_(True), User.deleted.is_(False), User.id >= start_id)
        .order_by(User.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def organization_named(session: Session, name: str) -> User:
    """The organization, or NotFound."""
    org = get_organization(session, name)
    if org is None:
        raise NotFound()
    return org


def create_organization(
    session: Session,
    settings: Settings,
    *,
    name: str,
    email: str | None,
    creator: User,
    auth: AuthContext | None = None,
    ip: str | None = None,
) -> User:
    """The org, its `owners` admin team holding the creator, and the `org_create` log entry."""
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise OrganizationError("A user or organization with this name already exists")
    if email and not is_valid_email(email):
        raise OrganizationError("Invalid email address")
    validate_username(name)
    if name_pending_deletion(session, name):
        raise OrganizationError("Username is not available")
    if email and not settings.FEATURE_ORG_SHARED_EMAIL:
        used = session.scalar(
            select(User.id).where(User.email == email, User.organization.is_(False))
        )
        if used is not None:
            raise OrganizationError(f"Email has already been used: {email}")
    org = User(
        username=name,
        email=email or placeholder_email(),
        organization=True,
        verified=True,
        tag_expiration_s=settings.default_tag_expiration_s,
    )
    session.add(org)
    try:
        session.flush()
        owners = Team(organization_id=org.id, name=OWNERS_TEAM, role=TeamRole.admin)
        session.add(owners)
        session.flush()
        session.add(TeamMember(team_id=owners.id, user_id=creator.id))
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise OrganizationError("A user or organization with this name already exists") from exc
    log_action(
        session,
        "org_create",
        namespace=org,
        performer=creator,
        auth=auth,
        ip=ip,
        metadata={"email": email or None, "namespace": name},
    )
    return org


@dataclass
class TeamSummary:
    team: Team
    member_count: int
    repo_count: int
    caller_is_member: bool


def team_summaries(session: Session, org: User, caller: User | None) -> list[TeamSummary]:
    """Every team of the org in creation order, with counts gathered in three queries."""
    teams = session.scalars(
        select(Team).where(Team.organization_id == org.id).order_by(Team.id)
    ).all()
    team_ids = [team.id for team in teams]
    if not team_ids:
        return []
    members = dict(
        session.execute(
            select(TeamMember.team_id, func.count())
            .where(TeamMember.team_id.in_(team_ids))
            .group_by(TeamMember.team_id)
        ).all()
    )
    repos = dict(
        session.execute(
            select(RepositoryPermission.team_id, func.count())
            .where(RepositoryPermission.team_id.in_(team_ids))
            .group_by(RepositoryPermission.team_id)
        ).all()
    )
    mine: set[int] = set()
    if caller is not None:
        mine = set(
            session.scalars(
                select(TeamMember.team_id).where(
                    TeamMember.team_id.in_(team_ids), TeamMember.user_id == caller.id
                )
            ).all()
        )
    return [
        TeamSummary(team, members.get(team.id, 0), repos.get(team.id, 0), team.id in mine)
        for team in teams
    ]


@dataclass
class DetailChanges:
    invoice_email: bool | None = None
    invoice_email_address: str | None = None
    set_invoice_email_address: bool = False
    email: str | None = None
    set_email: bool = False
    tag_expiration_s: int | None = None


def change_details(
    session: Session,
    settings: Settings,
    org: User,
    changes: DetailChanges,
    *,
    auth: AuthContext,
    ip: str | None,
) -> None:
    """Apply PUT /organization/{org} in Quay's order; everything is validated before writing."""
    new_email: str | None = None
    current_email = org.email if org.email and is_valid_email(org.email) else ""
    if changes.set_email:
        new_email = changes.email or ""
        if new_email == current_email:
            new_email = None
        elif new_email and not is_valid_email(new_email):
            raise OrganizationError("Invalid email address")
    apply_expiration = (
        changes.tag_expiration_s is not None and settings.FEATURE_CHANGE_TAG_EXPIRATION
    )
    if apply_expiration and changes.tag_expiration_s not in settings.tag_expiration_options_s:
        raise InvalidTagExpiration("Invalid tag expiration option")

    def log(kind: str, metadata: dict) -> None:
        log_action(
            session,
            kind,
            namespace=org,
            auth=auth,
            ip=ip,
            metadata={**metadata, "namespace": org.username},
        )

    if changes.invoice_email is not None:
        org.invoice_email = changes.invoice_email
        log("org_change_invoicing", {"invoice_email": changes.invoice_email})
    if changes.set_invoice_email_address:
        address = changes.invoice_email_address or None
        if address != org.invoice_email_address:
            org.invoice_email_address = address
            log("org_change_invoicing", {"invoice_email_address": address})
    if new_email is not None:
        org.email = new_email or placeholder_email()
        log("org_change_email", {"email": new_email, "old_email": current_email})
    if apply_expiration:
        org.tag_expiration_s = changes.tag_expiration_s
        log("org_change_tag_expiration", {"tag_expiration": changes.tag_expiration_s})
    session.flush()


def mark_namespace_deleted(session: Session, namespace: User) -> None:
    """Make a user or organization unreachable at once; namespace GC reclaims its data later.

    Linked access (teams, applications, robots) goes now, so nothing the namespace granted
    keeps working; the name and email are replaced by random values and the old name stays
    reserved until GC removes the marker.
    """
    if namespace.deleted:
        return
    robots = select(User.id).where(
        User.robot.is_(True), User.username.startswith(namespace.username + "+", autoescape=True)
    )
    if namespace.organization:
        session.execute(delete(Team).where(Team.organization_id == namespace.id))
        session.execute(
            delete(OAuthApplication).where(OAuthApplication.organization_id == namespace.id)
        )
    else:
        session.execute(delete(TeamMember).where(TeamMember.user_id == namespace.id))
    session.execute(
        delete(User).where(User.id.in_(robots)).execution_options(synchronize_session=False)
    )
    quota.delete_namespace_quota(session, namespace.id)
    session.execute(
        update(Repository)
        .where(Repository.namespace_user_id == namespace.id)
        .values(deleted=True)
        .execution_options(synchronize_session=False)
    )
    marker = DeletedNamespace(
        namespace_id=namespace.id,
        original_username=namespace.username,
        original_email=namespace.email,
    )
    session.add(marker)
    namespace.username = str(uuid.uuid4())
    namespace.email = str(uuid.uuid4())
    namespace.enabled = False
    namespace.deleted = True
    session.flush()
    item = enqueue(session, NAMESPACE_GC_QUEUE, {"namespace_id": namespace.id})
    marker.queue_id = item.state_id
    session.flush()


def delete_organization(session: Session, org: User, *, auth: AuthContext, ip: str | None) -> None:
    log_action(
        session, "org_delete", namespace=org, auth=auth, ip=ip, metadata={"namespace": org.username}
    )
    mark_namespace_deleted(session, org)


@dataclass
class Collaborator:
    user: User
    repositories: list[str]


def collaborators(session: Session, org: User) -> list[Collaborator]:
    """Users with direct repository permissions in the org who belong to none of its teams."""
    in_teams = (
        select(TeamMember.user_id)
        .join(Team, Team.id == TeamMember.team_id)
        .where(Team.organization_id == org.id)
    )
    rows = session.execute(
        select(User, Repository.name)
        .join(RepositoryPermission, RepositoryPermission.user_id == User.id)
        .join(Repository, Repository.id == RepositoryPermission.repository_id)
        .where(
            Repository.namespace_user_id == org.id,
            Repository.deleted.is_(False),
            User.robot.is_(False),
            User.id.not_in(in_teams),
        )
        .order_by(User.id, Repository.name)
    ).all()
    found: dict[int, Collaborator] = {}
    for user, repo_name in rows:
        found.setdefault(user.id, Collaborator(user, [])).repositories.append(repo_name)
    return list(found.values())
