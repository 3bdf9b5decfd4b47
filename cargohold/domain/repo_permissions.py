"""Explicit repository grants to users, robots and teams (the rules deciding access live in
`permissions`; this module reads and changes the grants themselves)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from cargohold.auth.context import AuthContext
from cargohold.db.models.accounts import Team, TeamMember, User
from cargohold.db.models.registry import Repository, RepositoryPermission, Role
from cargohold.domain import permissions
from cargohold.domain.audit import log_repository_action
from cargohold.domain.errors import Invalid


class GrantError(Invalid):
    """A grant was refused; the message is Quay's wording."""


def role_for_missing_repository(
    session: Session, auth: AuthContext, namespace_name: str
) -> Role | None:
    """The role the caller would hold on a repository not (yet) in `namespace_name`: it decides
    whether the caller may learn that the repository is missing."""
    namespace = session.scalar(
        select(User).where(User.username == namespace_name, User.deleted.is_(False))
    )
    if namespace is None:
        return Role.admin if auth.has_superuser_full_access else None
    return permissions.effective_namespace_repository_role(session, auth, namespace)


def _user_metadata(repository: Repository, username: str) -> dict[str, str]:
    return {
        "username": username,
        "repo": repository.name,
        "namespace": repository.namespace_user.username,
    }


def _grants(
    session: Session, repository: Repository, *, teams: bool
) -> Sequence[RepositoryPermission]:
    """The repository's grants to teams, or to users and robots, oldest first."""
    grantee = RepositoryPermission.team if teams else RepositoryPermission.user
    grantee_id = RepositoryPermission.team_id if teams else RepositoryPermission.user_id
    return session.scalars(
        select(RepositoryPermission)
        .options(joinedload(grantee))
        .where(RepositoryPermission.repository_id == repository.id, grantee_id.is_not(None))
        .order_by(RepositoryPermission.id)
    ).all()


def user_grants(session: Session, repository: Repository) -> Sequence[RepositoryPermission]:
    return _grants(session, repository, teams=False)


def team_grants(session: Session, repository: Repository) -> Sequence[RepositoryPermission]:
    return _grants(session, repository, teams=True)


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
    session: Session,
    repository: Repository,
    username: str,
    role: Role,
    *,
    auth: AuthContext,
    ip: str | None,
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
    metadata = {**_user_metadata(repository, username), "role": str(role)}
    log_repository_action(
        session, "change_repo_permission", repository, auth=auth, ip=ip, metadata=metadata
    )
    return user, grant


def delete_user_grant(
    session: Session, repository: Repository, username: str, *, auth: AuthContext, ip: str | None
) -> User:
    if username == repository.namespace_user.username:
        raise GrantError("Namespace owner must always be admin.")
    user = find_grantee(session, username)
    grant = user_grant(session, repository, user) if user is not None else None
    if user is None or grant is None:
        raise GrantError("User does not have permission for repo.")
    session.delete(grant)
    metadata = _user_metadata(repository, username)
    log_repository_action(
        session, "delete_repo_permission", repository, auth=auth, ip=ip, metadata=metadata
    )
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
    session: Session,
    repository: Repository,
    team_name: str,
    role: Role,
    *,
    auth: AuthContext,
    ip: str | None,
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
    metadata = {"team": team_name, "repo": repository.name, "role": str(role)}
    log_repository_action(
        session, "change_repo_permission", repository, auth=auth, ip=ip, metadata=metadata
    )
    return team, grant


def delete_team_grant(
    session: Session, repository: Repository, team_name: str, *, auth: AuthContext, ip: str | None
) -> None:
    grant = team_grant(session, repository, team_name)
    if grant is None:
        raise GrantError("Team does not have permission for repo.")
    session.execute(delete(RepositoryPermission).where(RepositoryPermission.id == grant.id))
    metadata = {"team": team_name, "repo": repository.name}
    log_repository_action(
        session, "delete_repo_permission", repository, auth=auth, ip=ip, metadata=metadata
    )
