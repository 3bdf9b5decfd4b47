"""The one place that decides who may do what.

Real roles come from the database (namespace ownership, teams, direct grants); the caller's
OAuth scopes then cap them (`AuthContext.cap_*`). Endpoints and the registry ask the
functions at the bottom of this module and never re-derive rules themselves.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cargohold.auth.context import AuthContext
from cargohold.db.models.accounts import TEAM_ROLE_RANK, Team, TeamMember, TeamRole, User
from cargohold.db.models.mirror import RepoMirrorConfig
from cargohold.db.models.registry import (
    ROLE_RANK,
    Repository,
    RepositoryPermission,
    RepositoryState,
    Role,
)
from cargohold.domain.repositories import visible_repositories


def _max_role(a: Role | None, b: Role | None) -> Role | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if ROLE_RANK[a] >= ROLE_RANK[b] else b


def team_role_in_namespace(session: Session, user: User, namespace: User) -> TeamRole | None:
    """The user's strongest role in a namespace: owner of their own, else their best team."""
    if namespace.id == user.id and not user.robot:
        return TeamRole.admin
    if not namespace.organization:
        return None
    roles = session.scalars(
        select(Team.role)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(Team.organization_id == namespace.id, TeamMember.user_id == user.id)
    ).all()
    if not roles:
        return None
    return max(roles, key=lambda role: TEAM_ROLE_RANK[role])


def namespace_repository_role(session: Session, user: User, namespace: User) -> Role | None:
    """The role a user holds on every repository of a namespace, existing or not.

    Only the namespace's own user and the organization's admins have one; it is what lets
    them learn that a repository does not exist (404) where others get 401/403.
    """
    if namespace.id == user.id and not user.robot:
        return Role.admin
    if team_role_in_namespace(session, user, namespace) is TeamRole.admin:
        return Role.admin
    return None


def repository_role(session: Session, user: User, repository: Repository) -> Role | None:
    """The user's real role on a repository, before any scope cap."""
    if namespace_repository_role(session, user, repository.namespace_user) is Role.admin:
        return Role.admin
    direct = session.scalar(
        select(RepositoryPermission.role).where(
            RepositoryPermission.repository_id == repository.id,
            RepositoryPermission.user_id == user.id,
        )
    )
    via_teams = session.scalars(
        select(RepositoryPermission.role)
        .join(TeamMember, TeamMember.team_id == RepositoryPermission.team_id)
        .where(
            RepositoryPermission.repository_id == repository.id,
            TeamMember.user_id == user.id,
        )
    ).all()
    role = direct
    for team_grant in via_teams:
        role = _max_role(role, team_grant)
    return role


def effective_repository_role(
    session: Session, auth: AuthContext, repository: Repository
) -> Role | None:
    """The caller's role on a repository with scopes applied (superusers included)."""
    if auth.user is None or not auth.user.enabled:
        return None
    if auth.has_superuser_full_access:
        return Role.admin
    return auth.cap_repo_role(repository_role(session, auth.user, repository))


def effective_namespace_repository_role(
    session: Session, auth: AuthContext, namespace: User
) -> Role | None:
    """The caller's namespace-wide repository role with scopes applied (see above)."""
    if auth.user is None or not auth.user.enabled:
        return None
    if auth.has_superuser_full_access:
        return Role.admin
    return auth.cap_repo_role(namespace_repository_role(session, auth.user, namespace))


def can_read_repository(session: Session, auth: AuthContext, repository: Repository) -> bool:
    if repository.public or auth.is_global_readonly_superuser:
        return True
    return effective_repository_role(session, auth, repository) is not None


def listable_repositories(auth: AuthContext, *, include_public: bool) -> Select[tuple[Repository]]:
    """Repositories the caller may list now (public ones when asked).

    Superusers who read everything see every repository; a token without repository
    scopes lists nothing beyond public repositories, whatever its user's grants.
    """
    caller = auth.user if auth.user is not None and auth.repo_role_cap() is not None else None
    see_everything = auth.is_global_readonly_superuser or auth.has_superuser_full_access
    return visible_repositories(
        caller, include_public=include_public, see_everything=see_everything
    )


def can_write_repository(session: Session, auth: AuthContext, repository: Repository) -> bool:
    role = effective_repository_role(session, auth, repository)
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[Role.write]


def can_push_to_repository(session: Session, auth: AuthContext, repository: Repository) -> bool:
    """Registry pushes also need a repository in NORMAL state (mirrors allow their robot)."""
    if not can_write_repository(session, auth, repository):
        return False
    if repository.state == RepositoryState.MIRROR:
        return auth.user is not None and is_mirror_robot(session, repository.id, auth.user.username)
    return repository.state == RepositoryState.NORMAL


def can_admin_repository(session: Session, auth: AuthContext, repository: Repository) -> bool:
    return effective_repository_role(session, auth, repository) is Role.admin


def effective_namespace_role(
    session: Session, auth: AuthContext, namespace: User
) -> TeamRole | None:
    if auth.user is None or not auth.user.enabled:
        return None
    if auth.has_superuser_full_access:
        return TeamRole.admin
    return auth.cap_team_role(team_role_in_namespace(session, auth.user, namespace))


def can_create_repository(session: Session, auth: AuthContext, namespace: User) -> bool:
    role = effective_namespace_role(session, auth, namespace)
    return role is not None and TEAM_ROLE_RANK[role] >= TEAM_ROLE_RANK[TeamRole.creator]


def can_admin_organization(session: Session, auth: AuthContext, organization: User) -> bool:
    return effective_namespace_role(session, auth, organization) is TeamRole.admin


def is_organization_member(session: Session, auth: AuthContext, organization: User) -> bool:
    if auth.user is None or not auth.user.enabled:
        return False
    if auth.has_superuser_full_access:
        return True
    return team_role_in_namespace(session, auth.user, organization) is not None


def can_view_team(session: Session, auth: AuthContext, team: Team) -> bool:
    """Org admins see every team; members see their own (tokens need an org-role scope)."""
    if can_admin_organization(session, auth, team.organization):
        return True
    if auth.user is None or not auth.user.enabled or auth.team_role_cap() is None:
        return False
    return (
        session.scalar(
            select(TeamMember.id).where(
                TeamMember.team_id == team.id, TeamMember.user_id == auth.user.id
            )
        )
        is not None
    )


def is_mirror_robot(session: Session, repository_id: int, username: str | None) -> bool:
    """The robot a mirror pushes its copies as: the only pusher a MIRROR repository takes."""
    if not username:
        return False
    return (
        session.scalar(
            select(RepoMirrorConfig.id)
            .join(User, User.id == RepoMirrorConfig.robot_id)
            .where(RepoMirrorConfig.repository_id == repository_id, User.username == username)
        )
        is not None
    )
