"""Proxy-cache configuration of an organization, and checking an upstream before saving it."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from cargohold.api.deps import (
    AuthDep,
    CallerDep,
    DbDep,
    JsonBody,
    SettingsDep,
    client_ip,
    validate_body,
)
from cargohold.api.errors import not_found, unauthorized
from cargohold.api.orgauth import organization_for_admin
from cargohold.api.routing import ApiRouter, json_body_schema
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.proxy import ProxyCacheConfig
from cargohold.db.session import DbSession
from cargohold.domain import proxy_cache, proxy_cache_check
from cargohold.domain.permissions import team_role_in_namespace
from cargohold.domain.teams import get_organization

router = ApiRouter(tags=["organization"])

PROXY_PATH = "/api/v1/organization/{orgname}/proxycache"


class NewProxyCacheConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", title="NewProxyCacheConfig")

    upstream_registry: StrictStr = Field(
        description="Name of the upstream registry that is to be cached"
    )
    upstream_registry_username: StrictStr | None = None
    upstream_registry_password: StrictStr | None = None
    expiration_s: StrictInt | None = Field(default=None, ge=0, le=2**31 - 1)
    insecure: StrictBool | None = None


def _view(config: ProxyCacheConfig | None) -> dict[str, Any]:
    # Quay shows empty strings for every field when there is no configuration.
    if config is None:
        return {"upstream_registry": "", "expiration_s": "", "insecure": ""}
    return {
        "upstream_registry": config.upstream_registry,
        "expiration_s": config.expiration_s,
        "insecure": config.insecure,
    }


def _feature(settings: Settings) -> None:
    if not settings.FEATURE_PROXY_CACHE:
        raise not_found()


def _upstream(raw: dict[str, Any]) -> proxy_cache.Upstream:
    body = validate_body(NewProxyCacheConfig, raw)
    return proxy_cache.new_upstream(
        body.upstream_registry,
        body.upstream_registry_username,
        body.upstream_registry_password,
        body.expiration_s,
        body.insecure,
    )


def _may_view(db: DbSession, auth: AuthContext, orgname: str) -> bool:
    if auth.is_global_readonly_superuser or auth.has_superuser_full_access:
        return True
    org = get_organization(db, orgname)
    return (
        org is not None
        and auth.user is not None
        and team_role_in_namespace(db, auth.user, org) is not None
    )


@router.get(PROXY_PATH, operation_id="getProxyCacheConfig")
def get_proxy_cache(orgname: str, db: DbDep, settings: SettingsDep, auth: AuthDep) -> dict:
    """The organization's upstream (credentials are never shown)."""
    _feature(settings)
    if not _may_view(db, auth, orgname):
        raise unauthorized(auth)
    org = get_organization(db, orgname)
    return _view(proxy_cache.get_config(db, org.id) if org is not None else None)


@router.post(
    PROXY_PATH,
    operation_id="createProxyCacheConfig",
    status_code=201,
    openapi_extra=json_body_schema(NewProxyCacheConfig),
)
def create_proxy_cache(orgname: str, call: CallerDep, raw: JsonBody) -> JSONResponse:
    """Make the organization a pull-through cache of an upstream registry."""
    _feature(call.settings)
    org = organization_for_admin(call.db, call.auth, orgname)
    upstream = _upstream(raw)
    proxy_cache.create_config(call.db, call.settings, org, upstream, auth=call.auth, ip=call.ip)
    call.db.commit()
    return JSONResponse("Created", status_code=201)


@router.delete(PROXY_PATH, operation_id="deleteProxyCacheConfig", status_code=201)
def delete_proxy_cache(
    orgname: str, request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> JSONResponse:
    """Stop pulling through; what was cached stays until it expires."""
    _feature(settings)
    org = organization_for_admin(db, auth, orgname)
    if not proxy_cache.delete_config(db, org, auth=auth, ip=client_ip(request)):
        raise not_found()
    db.commit()
    return JSONResponse("Deleted", status_code=201)


@router.post(
    "/api/v1/organization/{orgname}/validateproxycache",
    operation_id="validateProxyCacheConfig",
    status_code=202,
    openapi_extra=json_body_schema(NewProxyCacheConfig),
)
def validate_proxy_cache(
    orgname: str, db: DbDep, settings: SettingsDep, auth: AuthDep, raw: JsonBody
) -> JSONResponse:
    """Log in to the upstream with the given credentials: 202 Valid (or Anonymous), else 400."""
    _feature(settings)
    org = organization_for_admin(db, auth, orgname)
    proxy_cache_check.require_unconfigured(db, org)
    answer = proxy_cache_check.check_new_upstream(db, settings, _upstream(raw))
    return JSONResponse(answer, status_code=202)
