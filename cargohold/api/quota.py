"""Namespace quotas and their limits: the superuser paths, /organization/{org}/quota, /user/quota.

Both superuser families (`/superuser/users/...` and `/superuser/organization/...`) behave the
same and accept users and organizations alike, as Quay's do.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from cargohold.api.deps import AuthDep, DbDep, JsonBody, SettingsDep, client_ip, require_fresh_login
from cargohold.api.errors import MessageError, invalid_request, not_found, unauthorized
from cargohold.api.routing import ApiRouter
from cargohold.api.superuser_access import (
    require_feature,
    require_superuser,
    require_superuser_reader,
)
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.models.quota import NamespaceQuota, QuotaLimit
from cargohold.domain import quota as quotas
from cargohold.domain.accounts import get_namespace
from cargohold.domain.audit import log_action
from cargohold.domain.permissions import is_organization_member

router = ApiRouter(tags=["quota"])

SUPERUSER_FAMILIES = ("users", "organization")
_HUMAN_SIZE_RE = re.compile(quotas.HUMAN_SIZE_PATTERN)


# --- request bodies (Quay's JSON schemas, with jsonschema-like first-line messages) --------


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _limit_form(body: dict[str, Any], key: str) -> bool:
    value = body.get(key)
    if key == "limit_bytes":
        return _is_integer(value)
    return isinstance(value, str) and bool(_HUMAN_SIZE_RE.match(value))


def _create_body(body: dict[str, Any]) -> int:
    """Exactly one of `limit_bytes` (integer) or `limit` (human size) must be given."""
    matches = [key for key in ("limit_bytes", "limit") if key in body and _limit_form(body, key)]
    if len(matches) != 1:
        reason = "is valid under each of" if matches else "is not valid under any of"
        raise invalid_request(f"{body!r} {reason} the given schemas")
    key = matches[0]
    return body[key] if key == "limit_bytes" else quotas.parse_human_size(body[key])


def _change_body(body: dict[str, Any]) -> int | None:
    """`{"limit_bytes": int}`, `{"limit": str}` or `{}`, nothing else."""
    keys = set(body)
    if not keys:
        return None
    if len(keys) != 1 or not _limit_form(body, next(iter(keys))):
        raise invalid_request(f"{body!r} is not valid under any of the given schemas")
    return quotas.limit_bytes_from_body(body)


def _limit_body(body: dict[str, Any], *, required: bool) -> tuple[Any, int | None]:
    for key in ("type", "threshold_percent"):
        if required and key not in body:
            raise invalid_request(f"'{key}' is a required property")
    limit_type = body.get("type")
    threshold = body.get("threshold_percent")
    if "type" in body and not isinstance(limit_type, str):
        raise invalid_request(f"{limit_type!r} is not of type 'string'")
    if "threshold_percent" in body and not _is_integer(threshold):
        raise invalid_request(f"{threshold!r} is not of type 'integer'")
    return limit_type, threshold


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


def _namespace(db: Session, name: str) -> User:
    namespace = get_namespace(db, name)
    if namespace is None:
        raise not_found()
    return namespace


def _quota(db: Session, namespace: User, quota_id: str) -> NamespaceQuota:
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
    return [quotas.quota_view(settings, quota)] if quota is not None else []


def su_create_quota(
    namespace: str, body: JsonBody, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> JSONResponse:
    _require_quota_api(settings)
    require_fresh_login(auth, settings)
    limit_bytes = _domain_call(_create_body, body)
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
    limit_bytes = _domain_call(_change_body, body)
    require_superuser(auth)
    quota = _quota(db, _namespace(db, namespace), quota_id)
    _domain_call(quotas.change_quota, quota, limit_bytes)
    db.commit()
    return quotas.quota_view(settings, quota)


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
        _base, su_create_quota, methods=["POST"], operation_id=f"create{_name}QuotaSuperUser"
    )
    router.add_api_route(
        _base + "/{quota_id}",
        su_change_quota,
        methods=["PUT"],
        operation_id=f"change{_name}QuotaSuperUser",
    )
    router.add_api_route(
        _base + "/{quota_id}",
        su_delete_quota,
        methods=["DELETE"],
        operation_id=f"delete{_name}QuotaSuperUser",
    )


# --- /organization/{orgname}/quota -------------------------------------------------------


def _require_reader(db: Session, auth: AuthContext, name: str) -> None:
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


def _audit(db: Session, kind: str, namespace: User, auth: AuthContext, request: Request, **meta):
    metadata = {"namespace": namespace.username, **meta}
    log_action(db, kind, namespace=namespace, auth=auth, ip=client_ip(request), metadata=metadata)


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
        return [quotas.quota_view(settings, quota)]
    if settings.DEFAULT_SYSTEM_REJECT_QUOTA_BYTES:
        return [quotas.default_quota_view(settings)]
    return []


@router.post("/api/v1/organization/{orgname}/quota", operation_id="createOrganizationQuota")
def create_org_quota(
    orgname: str,
    body: JsonBody,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> JSONResponse:
    _require_quota_api(settings)
    limit_bytes = _domain_call(_create_body, body)
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
    return quotas.quota_view(settings, _quota(db, _namespace(db, orgname), quota_id))


@router.put(
    "/api/v1/organization/{orgname}/quota/{quota_id}", operation_id="changeOrganizationQuota"
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
    limit_bytes = _domain_call(_change_body, body)
    _require_writer(auth)
    namespace = _namespace(db, orgname)
    quota = _quota(db, namespace, quota_id)
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
    return quotas.quota_view(settings, quota)


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
    _require_writer(auth)
    namespace = _namespace(db, orgname)
    quota = _quota(db, namespace, quota_id)
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


def _limit(db: Session, quota: NamespaceQuota, limit_id: str) -> QuotaLimit:
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
    return [quotas.limit_view(limit) for limit in quota.limits]


@router.post(
    "/api/v1/organization/{orgname}/quota/{quota_id}/limit",
    operation_id="createOrganizationQuotaLimit",
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
    _require_writer(auth)
    namespace = _namespace(db, orgname)
    quota = _quota(db, namespace, quota_id)
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
    return quotas.limit_view(_limit(db, quota, limit_id))


@router.put(
    "/api/v1/organization/{orgname}/quota/{quota_id}/limit/{limit_id}",
    operation_id="changeOrganizationQuotaLimit",
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
    _require_writer(auth)
    namespace = _namespace(db, orgname)
    quota = _quota(db, namespace, quota_id)
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
    return quotas.quota_view(settings, quota)


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
    _require_writer(auth)
    namespace = _namespace(db, orgname)
    quota = _quota(db, namespace, quota_id)
    limit = _limit(db, quota, limit_id)
    details = {"limit_id": limit.id, **_limit_audit(limit)}
    quotas.delete_limit(db, limit)
    _audit(db, "org_delete_quota_limit", namespace, auth, request, **details)
    db.commit()
    return _no_content()


# --- /user/quota (the caller's own namespace, read-only) --------------------------------


def _own_quota(db: Session, auth: AuthContext, settings: Settings, quota_id: str) -> NamespaceQuota:
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
    return [quotas.quota_view(settings, quota)] if quota is not None else []


@router.get("/api/v1/user/quota/{quota_id}", operation_id="getUserQuota")
def get_user_quota(quota_id: str, db: DbDep, auth: AuthDep, settings: SettingsDep) -> Any:
    return quotas.quota_view(settings, _own_quota(db, auth, settings, quota_id))


@router.get("/api/v1/user/quota/{quota_id}/limit", operation_id="listUserQuotaLimit")
def list_user_quota_limits(quota_id: str, db: DbDep, auth: AuthDep, settings: SettingsDep) -> Any:
    quota = _own_quota(db, auth, settings, quota_id)
    return [quotas.limit_view(limit) for limit in quota.limits]


@router.get("/api/v1/user/quota/{quota_id}/limit/{limit_id}", operation_id="getUserQuotaLimit")
def get_user_quota_limit(
    quota_id: str, limit_id: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> Any:
    """Quay answers with the parent quota here, not the limit; clients expect that."""
    quota = _own_quota(db, auth, settings, quota_id)
    if quotas.get_limit(quota, _parse_id(limit_id)) is None:
        raise not_found()
    return quotas.quota_view(settings, quota)
