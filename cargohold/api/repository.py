"""Repositories: list, create, read, describe, delete, visibility and state."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Request, Response
from pydantic import BaseModel, Field

from cargohold.api.deps import AuthDep, DbDep, JsonBody, SettingsDep, client_ip, validate_body
from cargohold.api.errors import (
    BAD_REQUEST_TEXT,
    ApiError,
    MessageError,
    invalid_request,
    not_found,
    unauthorized,
)
from cargohold.api.query import truthy
from cargohold.api.quota_views import repository_quota_reports
from cargohold.api.repo_access import format_ms, require_repository
from cargohold.api.routing import ApiRouter
from cargohold.db.models.registry import Repository, RepositoryState, Role
from cargohold.db.session import DbSession
from cargohold.domain import permissions, repositories
from cargohold.domain.accounts import get_namespace
from cargohold.domain.tags import history as tag_history
from cargohold.paging import encode_page_token, start_id

router = ApiRouter(tags=["repository"])
PAGE_SIZE = 100
REPO_TAGS_LIMIT = 500


class CreateRepositoryBody(BaseModel):
    repository: str
    visibility: Literal["public", "private"]
    description: str
    namespace: str = Field(default=None)
    repo_kind: Literal["image"] | None = None


class DescriptionBody(BaseModel):
    description: str


class VisibilityBody(BaseModel):
    visibility: Literal["public", "private"]


class StateBody(BaseModel):
    state: Literal["NORMAL", "READ_ONLY", "MIRROR"]


@router.get("/api/v1/repository", operation_id="listRepos")
def list_repositories(
    request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    namespace = request.query_params.get("namespace")
    starred = truthy(request, "starred")
    public = truthy(request, "public")
    repo_kind = request.query_params.get("repo_kind", "image")
    if repo_kind not in repositories.REPOSITORY_KINDS:
        raise MessageError(400, "Unknown repository kind")
    if not (namespace or starred or public):
        raise invalid_request("namespace, starred or public are required for this API call")
    if starred:
        if auth.user is None:
            raise MessageError(400, BAD_REQUEST_TEXT)
        query = repositories.starred_by(
            permissions.listable_repositories(auth, include_public=True), auth.user
        )
    else:
        query = permissions.listable_repositories(auth, include_public=public)
        if namespace:
            query = repositories.in_namespace(query, namespace)
    rows, next_id = repositories.page_by_id(
        db, query, start_id(settings, request.query_params.get("next_page")), PAGE_SIZE
    )
    ids = [repo.id for repo in rows]
    modified = repositories.last_modified_ms(db, ids) if truthy(request, "last_modified") else None
    popularity = repositories.popularity(db, ids) if truthy(request, "popularity") else None
    stars = repositories.starred_ids(db, auth.user, ids)
    quotas = (
        repository_quota_reports(db, settings, rows)
        if settings.FEATURE_QUOTA_MANAGEMENT and settings.FEATURE_EDIT_QUOTA
        else None
    )
    items = []
    for repo in rows:
        item: dict[str, Any] = {
            "namespace": repo.namespace_user.username,
            "name": repo.name,
            "description": repo.description,
            "is_public": repo.public,
            "kind": repo.kind,
            "state": repositories.state_name(repo),
        }
        if modified is not None:
            start_ms = modified.get(repo.id)
            item["last_modified"] = start_ms // 1000 if start_ms else None
        if popularity is not None:
            item["popularity"] = popularity.get(repo.id, 0.0)
        if auth.user is not None:
            item["is_starred"] = repo.id in stars
        if quotas is not None:
            item["quota_report"] = quotas[repo.id]
        items.append(item)
    body: dict[str, Any] = {"repositories": items}
    if next_id is not None:
        body["next_page"] = encode_page_token(settings, {"start_id": next_id})
    return body


@router.post("/api/v1/repository", operation_id="createRepo", status_code=201)
def create_repository(
    request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep, raw: JsonBody
) -> dict[str, Any]:
    body = validate_body(CreateRepositoryBody, raw)
    if auth.user is None:
        raise invalid_request("Must provide a namespace or must be logged in.")
    namespace_name = body.namespace or auth.user.username
    namespace = get_namespace(db, namespace_name)
    if namespace is None or not permissions.can_create_repository(db, auth, namespace):
        raise unauthorized(auth)
    repository = repositories.create_requested(
        db,
        namespace,
        body.repository,
        public=body.visibility == "public",
        description=body.description,
        extended_names=settings.FEATURE_EXTENDED_REPOSITORY_NAMES,
        auth=auth,
        ip=client_ip(request),
    )
    db.commit()
    return {"namespace": namespace_name, "name": body.repository, "kind": repository.kind}


def _repository_tags(db: DbSession, repository: Repository) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    for tag in tag_history.alive_tags(db, repository, limit=REPO_TAGS_LIMIT):
        item: dict[str, Any] = {
            "name": tag.name,
            "size": tag.manifest.layers_compressed_size,
            "manifest_digest": tag.manifest.digest,
        }
        if tag.lifetime_start_ms:
            item["last_modified"] = format_ms(tag.lifetime_start_ms)
        if tag.lifetime_end_ms is not None:
            item["expiration"] = format_ms(tag.lifetime_end_ms)
        tags[tag.name] = item
    return tags


@router.post(
    "/api/v1/repository/{repository:repopath}/changevisibility",
    operation_id="changeRepoVisibility",
)
def change_visibility(
    repository: str, request: Request, db: DbDep, auth: AuthDep, raw: JsonBody
) -> dict[str, Any]:
    repo = require_repository(db, auth, repository, Role.admin)
    body = validate_body(VisibilityBody, raw)
    repositories.change_visibility(db, repo, body.visibility, auth=auth, ip=client_ip(request))
    db.commit()
    return {"success": True}


@router.put("/api/v1/repository/{repository:repopath}/changestate", operation_id="changeRepoState")
def change_state(
    repository: str,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
    raw: JsonBody,
) -> dict[str, Any]:
    if not settings.FEATURE_REPO_MIRROR:
        raise not_found()
    repo = require_repository(db, auth, repository, Role.admin)
    body = validate_body(StateBody, raw)
    repositories.change_state(
        db, repo, RepositoryState[body.state], auth=auth, ip=client_ip(request)
    )
    db.commit()
    return {"success": True}


@router.get("/api/v1/repository/{repository:repopath}", operation_id="getRepo")
def get_repository(
    repository: str, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    repo = require_repository(db, auth, repository, Role.read, reading=True)
    role = permissions.effective_repository_role(db, auth, repo)
    can_write = role in (Role.write, Role.admin) and repo.state == RepositoryState.NORMAL
    can_admin = role is Role.admin or auth.is_global_readonly_superuser
    namespace = repo.namespace_user
    body: dict[str, Any] = {
        "namespace": namespace.username,
        "name": repo.name,
        "kind": repo.kind,
        "description": repo.description,
        "is_public": repo.public,
        "is_organization": namespace.organization,
        "is_starred": bool(repositories.starred_ids(db, auth.user, [repo.id])),
        "status_token": "" if repo.public else repo.badge_token,
        "trust_enabled": bool(repo.trust_enabled),
        "tag_expiration_s": namespace.tag_expiration_s,
        "is_free_account": True,
        "state": repositories.state_name(repo),
        "can_write": can_write,
        "can_admin": can_admin,
    }
    if truthy(request, "includeTags", default=True):
        body["tags"] = _repository_tags(db, repo)
    if truthy(request, "includeStats"):
        body["stats"] = repositories.daily_action_counts(db, repo)
    return body


@router.put("/api/v1/repository/{repository:repopath}", operation_id="updateRepo")
def update_repository(
    repository: str, request: Request, db: DbDep, auth: AuthDep, raw: JsonBody
) -> dict[str, Any]:
    repo = require_repository(db, auth, repository, Role.write)
    body = validate_body(DescriptionBody, raw)
    repositories.set_description(db, repo, body.description, auth=auth, ip=client_ip(request))
    db.commit()
    return {"success": True}


@router.delete("/api/v1/repository/{repository:repopath}", operation_id="deleteRepository")
def delete_repository(repository: str, request: Request, db: DbDep, auth: AuthDep) -> Response:
    try:
        repo = require_repository(db, auth, repository, Role.admin)
    except ApiError as exc:
        # Callers allowed to administer the namespace get 204 for a missing repository.
        if exc.status == 404:
            return Response(status_code=204)
        raise
    repositories.delete_requested(db, repo, auth=auth, ip=client_ip(request))
    db.commit()
    return Response(status_code=204)
