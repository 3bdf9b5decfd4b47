"""Tags of a repository: history listing, create/move/expire, delete, restore, time machine."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request, Response

from cargohold.api.body_schema import check_body
from cargohold.api.deps import AuthDep, DbDep, JsonBody, SettingsDep, client_ip
from cargohold.api.errors import MessageError, invalid_request, not_found
from cargohold.api.query import integer, truthy
from cargohold.api.repo_access import format_ms, require_normal_state, require_repository
from cargohold.api.routing import ApiRouter, json_body_schema
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.registry import Role, Tag
from cargohold.domain.tags import history as tag_history
from cargohold.domain.teams import Actor

router = ApiRouter(tags=["tag"])

TAG_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", re.ASCII)
INVALID_TAG_TEXT = (
    'Invalid tag: must match [A-Za-z0-9_.-], NOT start with "." or "-", and can contain '
    "1-128 characters"
)
FILTER_SYNTAX_TEXT = (
    "Unsupported syntax for filter_tag_name. Expected <operation>:<tag_name> where "
    "<operation>can be 'like' or 'eq'."
)
DEFAULT_LIMIT = 50
MAX_LIMIT = 100


def tag_view(tag: Tag, settings: Settings, presence: dict[int, dict[str, bool]]) -> dict[str, Any]:
    """One history row; keys whose condition fails are left out, never null."""
    manifest = tag.manifest
    view: dict[str, Any] = {"name": tag.name, "reversion": bool(tag.reversion)}
    if settings.FEATURE_IMMUTABLE_TAGS:
        view["immutable"] = bool(tag.immutable)
    start_s = tag.lifetime_start_ms // 1000
    if start_s > 0:
        view["start_ts"] = start_s
    end_ms = tag.lifetime_end_ms
    if end_ms is not None and end_ms // 1000 > 0:
        view["end_ts"] = end_ms // 1000
    view["manifest_digest"] = manifest.digest
    view["is_manifest_list"] = tag_history.is_manifest_list(manifest)
    view["size"] = manifest.layers_compressed_size
    if start_s > 0:
        view["last_modified"] = format_ms(tag.lifetime_start_ms)
    if end_ms is not None:
        view["expiration"] = format_ms(end_ms)
    children = presence.get(manifest.id)
    if children is not None:
        present = sum(1 for stored in children.values() if stored)
        view["is_sparse"] = present < len(children)
        view["child_manifest_count"] = len(children)
        view["present_child_count"] = present
        view["child_manifests_presence"] = children
    return view


def _actor(request: Request, auth: AuthContext) -> Actor:
    return Actor(auth, client_ip(request))


@router.get("/api/v1/repository/{repository:repopath}/tag/", operation_id="listRepoTags")
def list_tags(
    repository: str, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    repo = require_repository(db, auth, repository, Role.read, reading=True)
    page = max(1, integer(request, "page", 1, "Page index for the results. Default 1."))
    limit = integer(
        request,
        "limit",
        DEFAULT_LIMIT,
        "Limit to the number of results to return per page. Max 100.",
    )
    limit = max(1, min(MAX_LIMIT, limit))
    name_contains = None
    name_equals: list[str] = []
    filter_value = request.query_params.get("filter_tag_name") or ""
    if filter_value:
        operation, colon, value = filter_value.partition(":")
        if not colon:
            raise MessageError(400, FILTER_SYNTAX_TEXT)
        if operation == "like":
            name_contains = value
        elif operation == "eq":
            name_equals.append(value)
    specific = request.query_params.get("specificTag")
    if specific:
        name_equals.append(specific)
    history = tag_history.list_history(
        db,
        repo,
        only_active=truthy(request, "onlyActiveTags"),
        page=page,
        limit=limit,
        name_contains=name_contains,
        name_equals=name_equals,
    )
    return {
        "tags": [tag_view(tag, settings, history.presence) for tag in history.tags],
        "page": page,
        "has_additional": history.has_additional,
    }


# Quay's schemas for the tag bodies.
CHANGE_TAG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Where a tag points, when it expires and whether it may change",
    "properties": {
        "manifest_digest": {
            "type": ["string", "null"],
            "description": "The manifest the tag should point to",
        },
        "expiration": {
            "type": ["number", "null"],
            "description": "When the tag expires, in Unix seconds; null for never",
        },
        "immutable": {"type": "boolean", "description": "Whether the tag may change"},
    },
}
RESTORE_TAG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The manifest a tag goes back to",
    "properties": {
        "manifest_digest": {"type": "string", "description": "A manifest from the tag's history"}
    },
}
EXPIRE_TAG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The tag history entry to take out of the time machine",
    "properties": {
        "manifest_digest": {"type": "string", "description": "The entry's manifest"},
        "include_submanifests": {
            "type": "boolean",
            "description": "Whether a manifest list's children go too",
        },
        "is_alive": {"type": "boolean", "description": "Whether the entry is the alive tag"},
    },
}


@router.put(
    "/api/v1/repository/{repository:repopath}/tag/{tag}",
    operation_id="changeTag",
    status_code=201,
    openapi_extra=json_body_schema(CHANGE_TAG_SCHEMA),
)
def change_tag(
    repository: str,
    tag: str,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
    body: JsonBody,
) -> str:
    repo = require_repository(db, auth, repository, Role.write)
    require_normal_state(repo)
    check_body(CHANGE_TAG_SCHEMA, body)
    if not TAG_NAME_RE.match(tag):
        raise MessageError(400, INVALID_TAG_TEXT)
    change = tag_history.TagChange(
        change_expiration="expiration" in body and settings.FEATURE_CHANGE_TAG_EXPIRATION,
        expiration=body.get("expiration"),
        immutable=body["immutable"]
        if "immutable" in body and settings.FEATURE_IMMUTABLE_TAGS
        else None,
        manifest_digest=body.get("manifest_digest"),
    )
    tag_history.change_tag(db, repo, tag, change, _actor(request, auth))
    db.commit()
    return "Updated"


@router.delete("/api/v1/repository/{repository:repopath}/tag/{tag}", operation_id="deleteFullTag")
def delete_tag(repository: str, tag: str, request: Request, db: DbDep, auth: AuthDep) -> Response:
    repo = require_repository(db, auth, repository, Role.write)
    require_normal_state(repo)
    tag_history.delete_tag(db, repo, tag, _actor(request, auth))
    db.commit()
    return Response(status_code=204)


@router.post(
    "/api/v1/repository/{repository:repopath}/tag/{tag}/restore",
    operation_id="restoreTag",
    openapi_extra=json_body_schema(RESTORE_TAG_SCHEMA),
)
def restore_tag(
    repository: str, tag: str, request: Request, db: DbDep, auth: AuthDep, body: JsonBody
) -> dict[str, Any]:
    repo = require_repository(db, auth, repository, Role.write)
    require_normal_state(repo)
    check_body(RESTORE_TAG_SCHEMA, body)
    digest = body.get("manifest_digest")
    if digest is None:
        raise invalid_request("Missing manifest_digest")
    tag_history.restore_tag(db, repo, tag, digest, _actor(request, auth))
    db.commit()
    return {}


@router.post(
    "/api/v1/repository/{repository:repopath}/tag/{tag}/expire",
    operation_id="removeTagFromTimemachine",
    openapi_extra=json_body_schema(EXPIRE_TAG_SCHEMA),
)
def expire_tag(
    repository: str,
    tag: str,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
    body: JsonBody,
) -> str:
    if not settings.PERMANENTLY_DELETE_TAGS:
        raise not_found()
    repo = require_repository(db, auth, repository, Role.write)
    check_body(EXPIRE_TAG_SCHEMA, body)
    is_alive = body.get("is_alive", False)
    digest = body.get("manifest_digest")
    if digest is None and not is_alive:
        raise invalid_request("manifest_digest required when is_alive set to false")
    tag_history.remove_from_time_machine(
        db, repo, tag, digest=digest, is_alive=is_alive, actor=_actor(request, auth)
    )
    db.commit()
    return ""
