"""Default permissions: grants an organization gives each repository created in it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from cargohold.db.models.accounts import Team, TeamMember, User
from cargohold.db.models.prototypes import PermissionPrototype
from cargohold.db.models.registry import Repository, RepositoryPermission, Role
from cargohold.domain.audit import log_action
from cargohold.domain.errors import Invalid, ModelError
from cargohold.domain.teams import Actor, find_account, get_team


class PrototypeError(Invalid):
    """Bad input for a prototype: an unknown activating user or delegate."""


class DelegateTeamMissing(ModelError):
    """The delegate team does not exist (Quay's data-model message)."""


@dataclass
class Delegate:
    user: User | None = None
    team: Team | None = None


def _query(organization: User):
    return (
        select(PermissionPrototype)
        .options(
            joinedload(PermissionPrototype.activating_user),
            joinedload(PermissionPrototype.delegate_user),
            joinedload(PermissionPrototype.delegate_team),
        )
        .where(PermissionPrototype.organization_id == organization.id)
    )


def list_prototypes(session: Session, organization: User) -> list[PermissionPrototype]:
    return list(session.scalars(_query(organization).order_by(PermissionPrototype.id)))


def get_prototype(
    session: Session, organization: User, prototype_uuid: str
) -> PermissionPrototype | None:
    return session.scalar(_query(organization).where(PermissionPrototype.uuid == prototype_uuid))


def organization_member_ids(session: Session, organization: User, users: list[User]) -> set[int]:
    """Which of these accounts belong to a team of the organization (one query)."""
    ids = [user.id for user in users]
    if not ids:
        return set()
    return set(
        session.scalars(
            select(TeamMember.user_id)
            .join(Team, Team.id == TeamMember.team_id)
            .where(Team.organization_id == organization.id, TeamMember.user_id.in_(ids))
        )
    )


def resolve_activating_user(session: Session, name: str | None) -> User | None:
    if not name:
        return None
    user = find_account(session, name)
    if user is None:
        raise PrototypeError("Unknown activating user")
    return user


def resolve_delegate(session: Session, organization: User, name: str, kind: str) -> Delegate:
    if kind == "team":
        team = get_team(session, organization, name)
        if team is None:
            # Quay renders the exception's argument tuple here; clients see exactly this text.
            raise DelegateTeamMissing(
                f"('Team does not exist: %s/%s', '{organization.username}', '{name}')"
            )
        return Delegate(team=team)
    user = find_account(session, name) if kind == "user" else None
    if user is None or (user.robot and not user.username.startswith(organization.username + "+")):
        raise PrototypeError("Missing delegate user or team")
    return Delegate(user=user)


def _metadata(actor: Actor, prototype: PermissionPrototype) -> dict:
    data = {
        "prototypeid": prototype.uuid,
        "username": actor.user.username if actor.user else None,
        "activating_username": (
            prototype.activating_user.username if prototype.activating_user else None
        ),
        "role": prototype.role.value,
    }
    if prototype.delegate_team is not None:
        data["delegate_team"] = prototype.delegate_team.name
    else:
        data["delegate_user"] = prototype.delegate_user.username
    return data


def create_prototype(
    session: Session,
    actor: Actor,
    organization: User,
    *,
    role: Role,
    delegate: Delegate,
    activating_user: User | None,
) -> PermissionPrototype:
    prototype = PermissionPrototype(
        organization_id=organization.id,
        activating_user=activating_user,
        delegate_user=delegate.user,
        delegate_team=delegate.team,
        role=role,
    )
    session.add(prototype)
    session.flush()
    log_action(
        session,
        "create_prototype_permission",
        namespace=organization,
        auth=actor.auth,
        ip=actor.ip,
        metadata=_metadata(actor, prototype),
    )
    return prototype


def change_prototype_role(
    session: Session, actor: Actor, organization: User, prototype: PermissionPrototype, role: Role
) -> None:
    original = prototype.role
    prototype.role = role
    session.flush()
    log_action(
        session,
        "modify_prototype_permission",
        namespace=organization,
        auth=actor.auth,
        ip=actor.ip,
        metadata={**_metadata(actor, prototype), "original_role": original.value},
    )


def delete_prototype(
    session: Session, actor: Actor, organization: User, prototype: PermissionPrototype
) -> None:
    metadata = _metadata(actor, prototype)
    session.delete(prototype)
    session.flush()
    log_action(
        session,
        "delete_prototype_permission",
        namespace=organization,
        auth=actor.auth,
        ip=actor.ip,
        metadata=metadata,
    )


def apply_prototypes(session: Session, repository: Repository, creator: User | None) -> None:
    """Grant a newly created repository the organization's default permissions.

    Rules for the creating user come before rules for anyone; the first rule for a delegate
    wins, and a delegate that already holds a grant on the repository keeps it.
    """
    namespace = session.get(User, repository.namespace_user_id)
    if namespace is None or not namespace.organization:
        return
    prototypes = [
        prototype
        for prototype in session.scalars(
            select(PermissionPrototype)
            .where(PermissionPrototype.organization_id == namespace.id)
            .order_by(PermissionPrototype.id)
        )
        if prototype.activating_user_id is None
        or (creator is not None and prototype.activating_user_id == creator.id)
    ]
    prototypes.sort(key=lambda prototype: prototype.activating_user_id is None)
    existing = session.execute(
        select(RepositoryPermission.user_id, RepositoryPermission.team_id).where(
            RepositoryPermission.repository_id == repository.id
        )
    ).all()
    granted_users = {user_id for user_id, _ in existing if user_id is not None}
    granted_teams = {team_id for _, team_id in existing if team_id is not None}
    for prototype in prototypes:
        if prototype.delegate_user_id is not None:
            if prototype.delegate_user_id in granted_users:
                continue
            granted_users.add(prototype.delegate_user_id)
        else:
            if prototype.delegate_team_id in granted_teams:
                continue
            granted_teams.add(prototype.delegate_team_id)
        session.add(
            RepositoryPermission(
                repository_id=repository.id,
                user_id=prototype.delegate_user_id,
                team_id=prototype.delegate_team_id,
                role=prototype.role,
            )
        )
    session.flush()
