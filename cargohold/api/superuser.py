"""Superuser administration: organizations and the registry-size calculation."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from cargohold.api.deps import (
    AuthDep,
    DbDep,
    JsonBody,
    SettingsDep,
    client_ip,
    require_fresh_login,
)
from cargohold.api.errors import invalid_request
from cargohold.api.query import parse_integer
from cargohold.api.routing import ApiRouter
from cargohold.api.superuser_access import (
    require_superuser,
    require_superuser_feature,
    superuser_reader,
    superuser_writer,
)
from cargohold.api.superuser_views import organization_views
from cargohold.domain import organizations
from cargohold.domain import quota as quotas
from cargohold.domain.superuser import rename_organization
from cargohold.paging import encode_page_token, start_id

router = ApiRouter(tags=["superuser"])

MAX_PAGE_LIMIT = 100


def _page_limit(request: Request) -> int | None:
    raw = request.query_params.get("limit")
    if raw is None:
        return None
    limit = parse_integer(raw, "limit", "invalid literal for int() with base 10")
    if limit > MAX_PAGE_LIMIT:
        raise invalid_request("Page limit cannot be above 100")
    return limit


@router.get("/api/v1/superuser/organizations/", operation_id="listAllOrganizations")
def list_all_organizations(
    request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> Any:
    superuser_reader(settings, auth)
    limit = _page_limit(request)
    if limit is None:
        return {
            "organizations": organization_views(db, settings, organizations.list_organizations(db))
        }
    first = start_id(settings, request.query_params.get("next_page"))
    rows = organizations.list_organizations(db, start_id=first, limit=max(limit, 0) + 1)
    page, rest = rows[: max(limit, 0)], rows[max(limit, 0) :]
    body: dict[str, Any] = {"organizations": organization_views(db, settings, page)}
    if rest:
        body["next_page"] = encode_page_token(settings, {"start_id": rest[0].id})
    return body


@router.put("/api/v1/superuser/organizations/{name}", operation_id="changeOrganization")
def change_organization(
    name: str,
    body: JsonBody,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> Any:
    """Renames only: Quay's superuser endpoint ignores every other field."""
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    new_name = body.get("name")
    if new_name is not None and not isinstance(new_name, str):
        raise invalid_request(f"{new_name!r} is not of type 'string'")
    actor = require_superuser(auth)
    org = rename_organization(db, name, new_name, actor=actor, auth=auth, ip=client_ip(request))
    db.commit()
    return organization_views(db, settings, [org])[0]


@router.delete("/api/v1/superuser/organizations/{name}", operation_id="deleteOrganization")
def delete_organization(
    name: str, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> Response:
    """Forced deletion: no grace period, no sole-admin check; GC reclaims the content."""
    superuser_writer(settings, auth)
    org = organizations.organization_named(db, name)
    organizations.delete_organization(db, org, auth=auth, ip=client_ip(request))
    db.commit()
    return Response(status_code=204)


@router.get("/api/v1/superuser/registrysize/", operation_id="getRegistrySize")
def get_registry_size(db: DbDep, auth: AuthDep, settings: SettingsDep) -> Any:
    superuser_reader(settings, auth)
    return quotas.registry_size_view(db)


@router.post("/api/v1/superuser/registrysize/", operation_id="postRegistrySize")
def post_registry_size(db: DbDep, auth: AuthDep, settings: SettingsDep) -> JSONResponse:
    """201 when a calculation was queued now, 202 when one is already queued or running."""
    superuser_writer(settings, auth)
    queued = quotas.queue_registry_size(db)
    db.commit()
    return JSONResponse("", status_code=201 if queued else 202)
