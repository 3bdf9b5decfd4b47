"""Resolving `{repository}` path parameters and checking the caller's rights on them.

Quay's order: the permission check runs first and fails with 401 (anonymous) or 403
(logged in) whether or not the repository exists; only callers holding the permission
(for a missing repository: the namespace's owner and organization admins) learn that it
is missing (404). Private repositories thus stay invisible to everyone else.
"""

from __future__ import annotations

from email.utils import formatdate

from cargohold.api.errors import MessageError, not_found, unauthorized
from cargohold.auth.context import AuthContext
from cargohold.db.models.registry import ROLE_RANK, Repository, RepositoryState, Role
from cargohold.db.session import DbSession
from cargohold.domain import permissions, repo_permissions
from cargohold.domain.repositories import find_repository, split_repository_path


def format_ms(value_ms: int) -> str:
    """A millisecond timestamp (tag lifetimes) as an API date."""
    return formatdate(value_ms // 1000)


def _role_allows(role: Role | None, needed: Role) -> bool:
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[needed]


def require_repository(
    db: DbSession,
    auth: AuthContext,
    path: str,
    needed: Role,
    *,
    reading: bool = False,
    superuser_read: bool = False,
) -> Repository:
    """The repository named by `path` if the caller holds `needed` on it.

    `reading` endpoints also admit anyone on public repositories and global read-only
    superusers; `superuser_read` ones (administrative reads) admit only the latter.
    """
    superuser_read = superuser_read or reading
    parts = split_repository_path(path)
    if parts is None:
        raise not_found()
    repository = find_repository(db, *parts)
    if repository is None:
        if superuser_read and auth.is_global_readonly_superuser:
            raise not_found()
        if _role_allows(repo_permissions.role_for_missing_repository(db, auth, parts[0]), needed):
            raise not_found()
        raise unauthorized(auth)
    if (reading and repository.public) or (superuser_read and auth.is_global_readonly_superuser):
        return repository
    role = permissions.effective_repository_role(db, auth, repository)
    if not _role_allows(role, needed):
        raise unauthorized(auth)
    return repository


def require_normal_state(repository: Repository) -> None:
    """Tag and label changes need a NORMAL repository; mirrors and read-only ones refuse."""
    if repository.state != RepositoryState.NORMAL:
        raise MessageError(
            503, f"Repository is in read only or mirror mode: {int(repository.state)}"
        )
