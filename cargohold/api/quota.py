"""Namespace quotas and their limits: the superuser paths, /organization/{org}/quota, /user/quota.

Both superuser families (`/superuser/users/...` and `/superuser/organization/...`) behave the
same and accept users and organizations alike, as Quay's do.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from cargohold.api.body_schema import check_body
from cargohold.api.deps import AuthDep, DbDep, JsonBody, SettingsDep, client_ip, require_fresh_login
from cargohold.api.errors import MessageError, invalid_request, not_found, unauthorized
from cargohold.api.quota_views import default_quota_view, limit_view, quota_view
from cargohold.api.routing import ApiRouter, json_body_schema
from cargohold.api.superuser_access import (
    require_feature,
    require_superuser,
    require_superuser_reader,
)
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.models.quota import NamespaceQuota, QuotaLimit
from cargohold.db.session import DbSession
from cargohold.domain import quota as quotas
from cargohold.domain.accounts import get_namespace
from cargohold.domain.audit import log_action
from cargohold.domain.permissions import is_organization_member

router = ApiRouter(tags=["quota"])

SUPERUSER_FAMILIES = ("users", "organization")


# --- request bodies: Quay's JSON schemas ---------------------------------------------------

_LIMIT_BYTES = {"type": "integer", "description": "Size of the quota, in bytes"}
_HUMAN_LIMIT = {
    "type": "string",
    "description": "Size of the quota with a unit, such as 500MiB or 2G",
    "pattern": quotas.HUMAN_SIZE_PATTERN,
}
NEW_QUOTA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A new namespace quota: its size in bytes or with a unit",
    "oneOf": [
        {"required": ["limit_bytes"], "properties": {"limit_bytes": _LIMIT_BYTES}},
        {"required": ["limit"], "properties": {"limit": _HUMAN_LIMIT}},
    ],
}
CHANGE_QUOTA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A new size for a namespace quota, or nothing",
    "oneOf": [
        {
            "properties": {"limit_bytes": _LIMIT_BYTES},
            "required": ["limit_bytes"],
            "additionalProperties": False,
        },
        {
            "properties": {"limit": _HUMAN_LIMIT},
            "required": ["limit"],
            "additionalProperties": False,
        },
        {
            "properties": {"limit_bytes": {"not": {}}, "limit": {"not": {}}},
            "additionalProperties": False,
        },
    ],
}
_LIMIT_PROPERTIES = {
    "type": {"type": "string", "description": "What crossing the limit does: Warning or Reject"},
    "threshold_percent": {"type": "integer", "description": "Threshold, in percent of the quota"},
}
NEW_LIMIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A new limit of a quota",
    "required": ["type", "threshold_percent"],
    "properties": _LIMIT_PROPERTIES,
}
CHANGE_LIMIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Changes to a limit of a quota",
    "properties": _LIMIT_PROPERTIES,
}
# The superuser paths and the organization paths word an unparseable size differently.
SUPERUSER_LIMIT_FORMAT = "Invalid limit format"


def _requested_bytes(body: dict[str, Any], format_message: str) -> int | None:
    """The size a schema-valid quota body asks for (None when it names none)."""
    if "limit" in body:
        if not isinstance(body["limit"], str):
            # Beside a valid `limit_bytes` any `limit` passes the oneOf; Quay then fails on
            # a non-string one with a 500. Refuse it as the `limit` branch would.
            raise invalid_request(f"{body['limit']!r} is not of type 'string'")
        try:
            return quotas.parse_human_size(body["limit"])
        except quotas.QuotaError as exc:
            raise invalid_request(format_message) from exc
    if "limit_bytes" in body:
        return int(body["limit_bytes"])
    return None


def _create_body(body: dict[str, Any], format_message: str) -> int:
    check_body(NEW_QUOTA_SCHEMA, body)
    limit_bytes = _requested_bytes(body, format_message)
    assert limit_bytes is not None
    return limit_bytes


def _change_body(body: dict[str, Any], format_message: str) -> int | None:
    check_body(CHANGE_QUOTA_SCHEMA, body)
    return _requested_bytes(body, format_message)


def _limit_body(body: dict[str, Any], *, required: bool) -> tuple[Any, int | None]:
    check_body(NEW_LIMIT_SCHEMA if required else CHANGE_LIMIT_SCHEMA, body)
    threshold = body.get("threshold_percent")
    return body.get("type"), int(threshold) if threshold is not None else None


def _parse_id(value: str) -> int:
    # str.isdigit() also accepts digits int() refuses ("²"); ids fit in 18 digits.
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise not_found()
    return int(value)


def _domain_call(function, *args):
    """Run a domain operation, turning its rule violations into Quay's two error shapes."""
    try:
        return function(*args)
    except quotas.QuotaError as exc:
        raise invalid_request(str(exc)) from exc
    except quotas.QuotaModelError as exc:
        raise MessageError(400, str(exc)) from exc


def _require_quota_api(settings: Settings) -> None:
    require_feature(quotas.quota_api_enabled(settings))


def _created() -> JSONResponse:
    return JSONResponse("Created", status_code=201)


def _no_content() -> Response:
    return Response(status_code=204)


def _namespace(db: DbSession, name: str) -> User:
    namespace = get_namespace(db, name)
    if namespace is None:
        raise not_found()
    return namespace


def _quota(db: DbSession, namespace: User, quota_id: str) -> NamespaceQuota:
    quota = quotas.get_namespace_quota(db, namespace, _parse_id(quota_id))
    if quota is None:
        raise not_found()
    return quota


# --- superuser paths -----------------------------------------------------------------------


def su_list_quotas(namespace: str, db: DbDep, auth: AuthDep, settings: SettingsDep) -> Any:
    _require_quota_api(settings)
    require_fresh_login(auth, settings)
    require_superuser_reader(auth)
    target = _namespace(db, namespace)
    quota = quotas.get_quota(db, target)
    return [quota_view(settings, quota)] if quota is not None else []


def su_create_quota(
    namespace: str, body: JsonBody, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> JSONResponse:
    _require_quota_api(settings)
    require_fresh_login(auth, settings)
    limit_bytes = _create_body(body, SUPERUSER_LIMIT_FORMAT)
    require_superuser(auth)
    target = _namespace(db, namespace)
    _domain_call(
        lambda: quotas.create_quota(
            db, target, limit_bytes, exists_message=f"Quota for '{namespace}' already exists"
        )
    )
    db.commit()
    return _created()


def su_change_quota(
    namespace: str,
    quota_id: str,
    body: JsonBody,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> Any:
    _require_quota_api(settings)
    require_fresh_login(auth, settings)
    limit_bytes = _change_body(body, SUPERUSER_LIMIT_FORMAT)
    require_superuser(auth)
    quota = _quota(db, _namespace(db, namespace), quota_id)
    _domain_call(quotas.change_quota, quota, limit_bytes)
    db.commit()
    return quota_view(settings, quota)


def su_delete_quota(
    namespace: str, quota_id: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> Response:
    _require_quota_api(settings)
    require_superuser(auth)
    quota = _quota(db, _namespace(db, namespace), quota_id)
    quotas.delete_quota(db, quota)
    db.commit()
    return _no_content()


for _family in SUPERUSER_FAMILIES:
    _base = f"/api/v1/superuser/{_family}/{{namespace}}/quota"
    _name = "User" if _family == "users" else "Organization"
    router.add_api_route(
        _base, su_list_quotas, methods=["GET"], operation_id=f"list{_name}QuotaSuperUser"
    )
    router.add_api_route(
        _base,
        su_create_quota,
        methods=["POST"],
        operation_id=f"create{_name}QuotaSuperUser",
        openapi_extra=json_body_schema(NEW_QUOTA_SCHEMA),
    )
    router.add_api_route(
        _base + "/{quota_id}",
        su_change_quota,
        methods=["PUT"],
        openapi_extra=json_body_schema(CHANGE_QUOTA_SCHEMA),
        operation_id=f"change{_name}QuotaSuperUser",
    )
    router.add_api_route(
        _base + "/{quota_id}",
        su_delete_quota,
        methods=["DELETE"],
        operation_id=f"delete{_name}QuotaSuperUser",
    )


# --- /organization/{orgname}/quota -------------------------------------------------------


def _require_reader(db: DbSession, auth: AuthContext, name: str) -> None:
    """Org members (or the namespace's own user), read-only superusers, full-access superusers.

    Checked before existence, so non-members learn nothing about unknown names.
    """
    if auth.is_global_readonly_superuser or auth.has_superuser_full_access:
        return
    if auth.user is not None:
        namespace = get_namespace(db, name)
        if namespace is not None and (
            namespace.id == auth.user.id or is_organization_member(db, auth, namespace)
        ):
            return
    raise unauthorized(auth)


def _require_writer(auth: AuthContext) -> None:
    if not auth.has_superuser_full_access:
        raise unauthorized(auth)


def _audit(db: DbSession, kind: str, namespace: User, auth: AuthContext, request: Request, **meta):
    metadata = {"namespace": namespace.username, **meta}
    log_action(db, kind, namespace=namespace, auth=auth, ip=client_ip(request), metadata=metadata)


def _quota_for_writer(
    db: DbSession, auth: AuthContext, orgname: str, quota_id: str
) -> tuple[User, NamespaceQuota]:
    """The organization and its quota a full-access superuser is about to change."""
    _require_writer(auth)
    namespace = _namespace(db, orgname)
    return namespace, _quota(db, namespace, quota_id)


def _limit_audit(limit: QuotaLimit) -> dict[str, Any]:
    return {"type": limit.limit_type.value, "threshold_percent": limit.percent_of_limit}


@router.get("/api/v1/organization/{orgname}/quota", operation_id="listOrganizationQuota")
def list_org_quota(orgname: str, db: DbDep, auth: AuthDep, settings: SettingsDep) -> Any:
    _require_quota_api(settings)
    _require_reader(db, auth, orgname)
    org = _namespace(db, orgname)
    if not org.organization:
        raise not_found()
    quota = quotas.get_quota(db, org)
    if quota is not None:
        return [quota_view(settings, quota)]
    if settings.DEFAULT_SYSTEM_REJECT_QUOTA_BYTES:
        return [default_quota_view(settings)]
    return []


@router.post(
    "/api/v1/organization/{orgname}/quota",
    operation_id="createOrganizationQuota",
    openapi_extra=json_body_schema(NEW_QUOTA_SCHEMA),
)
def create_org_quota(
    orgname: str,
    body: JsonBody,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> JSONResponse:
    _require_quota_api(settings)
    limit_bytes = _create_body(body, quotas.LIMIT_FORMAT_MESSAGE)
    _require_writer(auth)
    org = _namespace(db, orgname)
    if not org.organization:
        raise not_found()
    quota = _domain_call(
        lambda: quotas.create_quota(
            db,
            org,
            limit_bytes,
            exists_message=f"Organization quota for '{orgname}' already exists",
        )
    )
    _audit(
        db,
        "org_create_quota",
        org,
        auth,
        request,
        limit_bytes=quota.limit_bytes,
        limit=quotas.format_human_size(quota.limit_bytes),
    )
    db.commit()
    return _created()


@router.get("/api/v1/organization/{orgname}/quota/{quota_id}", operation_id="getOrganizationQuota")
def get_org_quota(
    orgname: str, quota_id: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> Any:
    _require_quota_api(settings)
    _require_reader(db, auth, orgname)
    return quota_view(settings, _quota(db, _namespace(db, orgname), quota_id))


@router.put(
    "/api/v1/organization/{orgname}/quota/{quota_id}",
    operation_id="changeOrganizationQuota",
    openapi_extra=json_body_schema(CHANGE_QUOTA_SCHEMA),
)
def change_org_quota(
    orgname: str,
    quota_id: str,
    body: JsonBody,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> Any:
    _require_quota_api(settings)
    limit_bytes = _change_body(body, quotas.LIMIT_FORMAT_MESSAGE)
    namespace, quota = _quota_for_writer(db, auth, orgname, quota_id)
    previous = quota.limit_bytes
    if _domain_call(quotas.change_quota, quota, limit_bytes):
        _audit(
            db,
            "org_change_quota",
            namespace,
            auth,
            request,
            limit_bytes=quota.limit_bytes,
            limit=quotas.format_human_size(quota.limit_bytes),
            previous_limit_bytes=previous,
            previous_limit=quotas.format_human_size(previous),
        )
    db.commit()
    return quota_view(settings, quota)


@router.delete(
    "/api/v1/organization/{orgname}/quota/{quota_id}", operation_id="deleteOrganizationQuota"
)
def delete_org_quota(
    orgname: str,
    quota_id: str,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> Response:
    _require_quota_api(settings)
    namespace, quota = _quota_for_writer(db, auth, orgname, quota_id)
    deleted_id, limit_bytes = quota.id, quota.limit_bytes
    quotas.delete_quota(db, quota)
    _audit(
        db,
        "org_delete_quota",
        namespace,
        auth,
        request,
        quota_id=deleted_id,
        limit_bytes=limit_bytes,
        limit=quotas.format_human_size(limit_bytes),
    )
    db.commit()
    return _no_content()


def _limit(db: DbSession, quota: NamespaceQuota, limit_id: str) -> QuotaLimit:
    parsed = _parse_id(limit_id)
    limit = quotas.get_limit(quota, parsed)
    if limit is not None:
        return limit
    if quotas.limit_belongs_elsewhere(db, parsed):
        # Quay's data layer refuses a limit of another quota with an empty message.
        raise MessageError(400, "")
    raise not_found()


@router.get(
    "/api/v1/organization/{orgname}/quota/{quota_id}/limit",
    operation_id="listOrganizationQuotaLimit",
)
def list_org_quota_limits(
    orgname: str, quota_id: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> Any:
    _require_quota_api(settings)
    _require_reader(db, auth, orgname)
    quota = _quota(db, _namespace(db, orgname), quota_id)
    return [limit_view(limit) for limit in quota.limits]


@router.post(
    "/api/v1/organization/{orgname}/quota/{quota_id}/limit",
    operation_id="createOrganizationQuotaLimit",
    openapi_extra=json_body_schema(NEW_LIMIT_SCHEMA),
)
def create_org_quota_limit(
    orgname: str,
    quota_id: str,
    body: JsonBody,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> JSONResponse:
    _require_quota_api(settings)
    limit_type, threshold = _limit_body(body, required=True)
    namespace, quota = _quota_for_writer(db, auth, orgname, quota_id)
    _domain_call(quotas.create_limit, db, quota, limit_type, threshold)
    _audit(
        db,
        "org_create_quota_limit",
        namespace,
        auth,
        request,
        type=limit_type,
        threshold_percent=threshold,
    )
    db.commit()
    return _created()


@router.get(
    "/api/v1/organization/{orgname}/quota/{quota_id}/limit/{limit_id}",
    operation_id="getOrganizationQuotaLimit",
)
def get_org_quota_limit(
    orgname: str, quota_id: str, limit_id: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> Any:
    _require_quota_api(settings)
    _require_reader(db, auth, orgname)
    quota = _quota(db, _namespace(db, orgname), quota_id)
    return limit_view(_limit(db, quota, limit_id))


@router.put(
    "/api/v1/organization/{orgname}/quota/{quota_id}/limit/{limit_id}",
    operation_id="changeOrganizationQuotaLimit",
    openapi_extra=json_body_schema(CHANGE_LIMIT_SCHEMA),
)
def change_org_quota_limit(
    orgname: str,
    quota_id: str,
    limit_id: str,
    body: JsonBody,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> Any:
    _require_quota_api(settings)
    limit_type, threshold = _limit_body(body, required=False)
    namespace, quota = _quota_for_writer(db, auth, orgname, quota_id)
    limit = _limit(db, quota, limit_id)
    previous = _limit_audit(limit)
    try:
        quotas.change_limit(limit, limit_type, threshold)
    except quotas.QuotaModelError as exc:
        # Quay applies the type before rejecting the threshold; keep that partial update.
        db.commit()
        raise MessageError(400, str(exc)) from exc
    current = _limit_audit(limit)
    _audit(
        db,
        "org_change_quota_limit",
        namespace,
        auth,
        request,
        **current,
        previous_type=previous["type"],
        previous_threshold_percent=previous["threshold_percent"],
    )
    db.commit()
    return quota_view(settings, quota)


@router.delete(
    "/api/v1/organization/{orgname}/quota/{quota_id}/limit/{limit_id}",
    operation_id="deleteOrganizationQuotaLimit",
)
def delete_org_quota_limit(
    orgname: str,
    quota_id: str,
    limit_id: str,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> Response:
    _require_quota_api(settings)
    namespace, quota = _quota_for_writer(db, auth, orgname, quota_id)
    limit = _limit(db, quota, limit_id)
    details = {"limit_id": limit.id, **_limit_audit(limit)}
    quotas.delete_limit(db, limit)
    _audit(db, "org_delete_quota_limit", namespace, auth, request, **details)
    db.commit()
    return _no_content()


# --- /user/quota (the caller's own namespace, read-only) --------------------------------


def _own_quota(
    db: DbSession, auth: AuthContext, settings: Settings, quota_id: str
) -> NamespaceQuota:
    _require_quota_api(settings)
    if not auth.can_admin_self() or auth.user is None:
        raise unauthorized(auth)
    return _quota(db, auth.user, quota_id)


@router.get("/api/v1/user/quota", operation_id="listUserQuota")
def list_user_quota(db: DbDep, auth: AuthDep, settings: SettingsDep) -> Any:
    _require_quota_api(settings)
    if not auth.can_admin_self() or auth.user is None:
        raise unauthorized(auth)
    quota = quotas.get_quota(db, auth.user)
    return [quota_view(settings, quota)] if quota is not None else []


@router.get("/api/v1/user/quota/{quota_id}", operation_id="getUserQuota")
def get_user_quota(quota_id: str, db: DbDep, auth: AuthDep, settings: SettingsDep) -> Any:
    return quota_view(settings, _own_quota(db, auth, settings, quota_id))


@router.get("/api/v1/user/quota/{quota_id}/limit", operation_id="listUserQuotaLimit")
def list_user_quota_limits(quota_id: str, db: DbDep, auth: AuthDep, settings: SettingsDep) -> Any:
    quota = _own_quota(db, auth, settings, quota_id)
    return [limit_view(limit) for limit in quota.limits]


@router.get("/api/v1/user/quota/{quota_id}/limit/{limit_id}", operation_id="getUserQuotaLimit")
def get_user_quota_limit(
    quota_id: str, limit_id: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> Any:
    """Quay answers with the parent quota here, not the limit; clients expect that."""
    quota = _own_quota(db, auth, settings, quota_id)
    if quotas.get_limit(quota, _parse_id(limit_id)) is None:
        raise not_found()
    return quota_view(settings, quota)
