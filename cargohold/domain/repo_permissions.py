"""Explicit repository grants to users, robots and teams (the rules deciding access live in
`permissions`; this module reads and changes the grants themselves)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from cargohold.db.models.accounts import Team, TeamMember, User
from cargohold.db.models.registry import Repository, RepositoryPermission, Role
from cargohold.domain.errors import Invalid


class GrantError(Invalid):
    """A grant was refused; the message is Quay's wording."""


def user_grants(session: Session, repository: Repository) -> Sequence[RepositoryPermission]:
    return session.scalars(
        select(RepositoryPermission)
        .options(joinedload(RepositoryPermission.user))
        .where(
            RepositoryPermission.repository_id == repository.id,
            RepositoryPermission.user_id.is_not(None),
        )
        .order_by(RepositoryPermission.id)
    ).all()


def team_grants(session: Session, repository: Repository) -> Sequence[RepositoryPermission]:
    return session.scalars(
        select(RepositoryPermission)
        .options(joinedload(RepositoryPermission.team))
        .where(
            RepositoryPermission.repository_id == repository.id,
            RepositoryPermission.team_id.is_not(None),
        )
        .order_by(RepositoryPermission.id)
    ).all()


def organization_member_ids(
    session: Session, organization: User, users: Sequence[User]
) -> set[int]:
    """Which of `users` belong to the organization: team members, and its own robots."""
    if not users:
        return set()
    in_teams = set(
        session.scalars(
            select(TeamMember.user_id)
            .join(Team, Team.id == TeamMember.team_id)
            .where(
                Team.organization_id == organization.id,
                TeamMember.user_id.in_([user.id for user in users]),
            )
        )
    )
    robots = {
        user.id
        for user in users
        if user.robot and user.username.startswith(organization.username + "+")
    }
    return in_teams | robots


def find_grantee(session: Session, username: str) -> User | None:
    """A user or robot that may hold a repository role (not an organization)."""
    return session.scalar(
        select(User).where(
            User.username == username, User.organization.is_(False), User.deleted.is_(False)
        )
    )


def user_grant(session: Session, repository: Repository, user: User) -> RepositoryPermission | None:
    return session.scalar(
        select(RepositoryPermission).where(
            RepositoryPermission.repository_id == repository.id,
            RepositoryPermission.user_id == user.id,
        )
    )


def set_user_role(
    session: Session, repository: Repository, username: str, role: Role
) -> tuple[User, RepositoryPermission]:
    namespace = repository.namespace_user
    if username == namespace.username:
        raise GrantError("Namespace owner must always be admin.")
    user = find_grantee(session, username)
    if user is None:
        raise GrantError(f"Invalid username: {username}")
    if user.robot and not username.startswith(namespace.username + "+"):
        raise GrantError(f"Cannot add robot {username} under namespace {namespace.username}")
    grant = user_grant(session, repository, user)
    if grant is None:
        grant = RepositoryPermission(repository_id=repository.id, user_id=user.id, role=role)
        session.add(grant)
    else:
        grant.role = role
    session.flush()
    return user, grant


def delete_user_grant(session: Session, repository: Repository, username: str) -> User:
    if username == repository.namespace_user.username:
        raise GrantError("Namespace owner must always be admin.")
    user = find_grantee(session, username)
    grant = user_grant(session, repository, user) if user is not None else None
    if user is None or grant is None:
        raise GrantError("User does not have permission for repo.")
    session.delete(grant)
    return user


def transitive_roles(session: Session, repository: Repository, user: User) -> list[Role]:
    """The user's direct grant and the grants of each of their teams."""
    direct = session.scalars(
        select(RepositoryPermission.role).where(
            RepositoryPermission.repository_id == repository.id,
            RepositoryPermission.user_id == user.id,
        )
    ).all()
    via_teams = session.scalars(
        select(RepositoryPermission.role)
        .join(TeamMember, TeamMember.team_id == RepositoryPermission.team_id)
        .where(RepositoryPermission.repository_id == repository.id, TeamMember.user_id == user.id)
        .order_by(RepositoryPermission.id)
    ).all()
    return [*direct, *via_teams]


def find_team(session: Session, repository: Repository, team_name: str) -> Team | None:
    return session.scalar(
        select(Team).where(
            Team.organization_id == repository.namespace_user_id, Team.name == team_name
        )
    )


def team_grant(
    session: Session, repository: Repository, team_name: str
) -> RepositoryPermission | None:
    return session.scalar(
        select(RepositoryPermission)
        .join(Team, Team.id == RepositoryPermission.team_id)
        .where(
            RepositoryPermission.repository_id == repository.id,
            Team.organization_id == repository.namespace_user_id,
            Team.name == team_name,
        )
    )


def set_team_role(
    session: Session, repository: Repository, team_name: str, role: Role
) -> tuple[Team, RepositoryPermission]:
    team = find_team(session, repository, team_name)
    if team is None:
        raise GrantError(
            f"No team {team_name} in organization {repository.namespace_user.username}"
        )
    grant = team_grant(session, repository, team_name)
    if grant is None:
        grant = RepositoryPermission(repository_id=repository.id, team_id=team.id, role=role)
        session.add(grant)
    else:
        grant.role = role
    session.flush()
    return team, grant


def delete_team_grant(session: Session, repository: Repository, team_name: str) -> None:
    grant = team_grant(session, repository, team_name)
    if grant is None:
        raise GrantError("Team does not have permission for repo.")
    session.execute(delete(RepositoryPermission).where(RepositoryPermission.id == grant.id))
