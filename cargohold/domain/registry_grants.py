"""What a /v2 token grants: the actions a caller may take on each repository it asks for."""

from __future__ import annotations

from dataclasses import dataclass

from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.models.registry import Repository, RepositoryState
from cargohold.db.session import DbSession
from cargohold.domain import accounts, permissions, proxy_cache, repositories
from cargohold.domain.errors import Forbidden, Invalid

ACTION_ORDER = ("push", "pull", "*")


@dataclass(frozen=True)
class ScopeRequest:
    raw_name: str  # as requested, hostname prefix included
    namespace: str
    name: str
    actions: tuple[str, ...]


class NamespaceDisabled(Forbidden):
    """A superuser disabled the namespace: nothing in it is granted."""


class NotAnImageRepository(Invalid):
    """The repository holds something other than container images."""


def decide_actions(
    session: DbSession, settings: Settings, auth: AuthContext, scope: ScopeRequest
) -> list[str]:
    """The actions granted for one scope, in Quay's order (push, pull, *).

    A push to a repository that does not exist creates it when the caller may create
    repositories in the namespace. Raises RegistryError for disabled namespaces and for
    repositories that do not hold images.
    """
    namespace = accounts.get_namespace(session, scope.namespace)
    if namespace is None:
        return []
    if not namespace.enabled:
        raise NamespaceDisabled(
            f"Namespace {scope.namespace} has been disabled. Please contact a system administrator."
        )
    repository = repositories.find_repository(session, scope.namespace, scope.name)
    if repository is not None and repository.kind != "image":
        raise NotAnImageRepository(
            f"This repository is for managing {repository.kind} and not container images."
        )
    granted: set[str] = set()
    proxied = settings.FEATURE_PROXY_CACHE and proxy_cache.is_proxy_namespace(session, namespace.id)
    # A proxy-cache organization holds only what its upstream has: nobody pushes into it.
    if "push" in scope.actions and auth.user is not None and not proxied:
        if repository is not None:
            if permissions.can_push_to_repository(session, auth, repository):
                granted.add("push")
        elif permissions.can_create_repository(session, auth, namespace):
            repository = repositories.find_or_create_repository(
                session,
                namespace,
                scope.name,
                public=not settings.CREATE_PRIVATE_REPO_ON_PUSH,
                creator=auth.user,
            )
            granted.add("push")
    if "pull" in scope.actions and (
        _may_pull(session, auth, namespace, repository)
        or (proxied and _is_member(session, auth, namespace))
    ):
        granted.add("pull")
    if (
        "*" in scope.actions
        and repository is not None
        and repository.state == RepositoryState.NORMAL
        and permissions.can_admin_repository(session, auth, repository)
    ):
        granted.add("*")
    return [action for action in ACTION_ORDER if action in granted]


def _may_pull(
    session: DbSession, auth: AuthContext, namespace: User, repository: Repository | None
) -> bool:
    if repository is not None:
        return permissions.can_read_repository(session, auth, repository)
    return permissions.effective_namespace_repository_role(session, auth, namespace) is not None


def _is_member(session: DbSession, auth: AuthContext, namespace: User) -> bool:
    """Quay lets an organization's members pull through its proxy cache."""
    return auth.user is not None and (
        permissions.team_role_in_namespace(session, auth.user, namespace) is not None
    )
