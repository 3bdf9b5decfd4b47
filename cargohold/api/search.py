"""Search: repositories by text (conductRepoSearch) and entities by prefix (getMatchingEntities)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from cargohold.api.deps import AuthDep, DbDep, SettingsDep
from cargohold.api.query import integer, truthy
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.session import DbSession
from cargohold.domain import permissions, repo_permissions, repositories, search
from cargohold.domain.accounts import get_namespace
from cargohold.domain.avatars import team_avatar, user_avatar

router = ApiRouter(tags=["search"])

RESULTS_PER_PAGE = 10
MAX_RESULT_PAGES = 10
REPOSITORY_SCORE = 4
ENTITY_SCORE = 1


def _namespace_view(settings: Settings, auth: AuthContext, entity: User) -> dict[str, Any]:
    if entity.organization:
        return {
            "title": "org",
            "kind": "organization",
            "avatar": user_avatar(settings, entity, "org"),
            "name": entity.username,
            "score": ENTITY_SCORE,
            "href": f"/organization/{entity.username}",
        }
    return {
        "title": "user",
        "kind": "user",
        "avatar": user_avatar(settings, entity),
        "name": entity.username,
        "score": ENTITY_SCORE,
        "href": f"/user/{entity.username}",
    }


@router.get("/api/v1/find/repositories", operation_id="conductRepoSearch")
def find_repositories(
    request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    text = request.query_params.get("query", "")
    page = integer(request, "page", 1, "The page.")
    page = min(max(1, page), MAX_RESULT_PAGES)
    offset = (page - 1) * RESULTS_PER_PAGE
    caller = auth.user if auth.repo_role_cap() is not None else None
    found = search.find_repositories(
        db,
        caller,
        text,
        see_everything=auth.is_global_readonly_superuser or auth.has_superuser_full_access,
        offset=offset,
        limit=RESULTS_PER_PAGE + 1,
    )
    shown = found[:RESULTS_PER_PAGE]
    ids = [repo.id for repo in shown]
    modified = repositories.last_modified_ms(db, ids)
    stars = search.star_counts(db, ids)
    usage = repositories.popularity(db, ids) if truthy(request, "includeUsage") else None
    results = []
    for repo in shown:
        namespace = repo.namespace_user.username
        view: dict[str, Any] = {
            "kind": "repository",
            "title": "repo",
            "namespace": _namespace_view(settings, auth, repo.namespace_user),
            "name": repo.name,
            "description": repo.description,
            "is_public": repo.public,
            "score": REPOSITORY_SCORE,
            "href": f"/repository/{namespace}/{repo.name}",
            "stars": stars.get(repo.id, 0),
        }
        start_ms = modified.get(repo.id)
        if start_ms is not None:
            view["last_modified"] = start_ms // 1000
        if usage is not None:
            view["popularity"] = usage.get(repo.id, 0.0)
        results.append(view)
    return {
        "results": results,
        "has_additional": len(found) > RESULTS_PER_PAGE,
        "page": page,
        "page_size": RESULTS_PER_PAGE,
        "start_index": offset,
    }


def _entity_scope(
    db: DbSession, auth: AuthContext, namespace_name: str
) -> tuple[User | None, str | None, bool]:
    """(organization, namespace whose robots may be listed, caller administers the org)."""
    namespace = get_namespace(db, namespace_name) if namespace_name else None
    if namespace is not None and namespace.organization:
        if permissions.is_organization_member(db, auth, namespace):
            admin = permissions.can_admin_organization(db, auth, namespace)
            return namespace, namespace.username, admin
        return namespace, None, False
    if auth.user is not None and auth.user.username == namespace_name and auth.can_admin_self():
        return None, namespace_name, False
    return None, None, False


@router.get("/api/v1/entities/{prefix}", operation_id="getMatchingEntities")
def matching_entities(
    prefix: str, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    prefix = prefix.replace(" ", "").lower()
    organization, robot_namespace, is_admin = _entity_scope(
        db, auth, request.query_params.get("namespace", "")
    )
    teams: list[dict[str, Any]] = []
    orgs: list[dict[str, Any]] = []
    if organization is not None and robot_namespace is not None:
        if truthy(request, "includeTeams"):
            teams = [
                {
                    "name": team.name,
                    "kind": "team",
                    "is_org_member": True,
                    "avatar": team_avatar(settings, team.name),
                }
                for team in search.matching_teams(db, organization, prefix)
            ]
        if truthy(request, "includeOrgs") and is_admin and organization.username.startswith(prefix):
            orgs = [
                {
                    "name": organization.username,
                    "kind": "org",
                    "is_org_member": True,
                    "avatar": user_avatar(settings, organization, "org"),
                }
            ]
    users = search.matching_users(
        db,
        prefix,
        robot_namespace=robot_namespace,
        exact_only=not settings.FEATURE_PARTIAL_USER_AUTOCOMPLETE,
    )
    members = (
        repo_permissions.organization_member_ids(db, organization, list(users))
        if organization is not None
        else set()
    )
    people = []
    for user in users:
        view: dict[str, Any] = {
            "name": user.username,
            "kind": "user",
            "is_robot": user.robot,
            "avatar": user_avatar(settings, user),
        }
        if organization is not None:
            view["is_org_member"] = user.id in members
        people.append(view)
    return {"results": teams + people + orgs}
