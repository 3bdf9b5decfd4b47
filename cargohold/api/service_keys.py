"""Superuser management of service keys: list, create, read, update, delete, approve."""

from __future__ import annotations

import json
from email.utils import format_datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from cargohold.api.body_schema import check_body
from cargohold.api.deps import AuthDep, DbDep, JsonBody, SettingsDep, client_ip, require_fresh_login
from cargohold.api.routing import ApiRouter, json_body_schema
from cargohold.api.superuser_access import (
    require_superuser,
    require_superuser_feature,
    require_superuser_reader,
)
from cargohold.api.superuser_views import superuser_user_views
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.keys import ServiceKey
from cargohold.db.session import DbSession
from cargohold.domain.service_keys import admin
from cargohold.domain.teams import Actor

router = ApiRouter(tags=["superuser"])


class SortedJSONResponse(JSONResponse):
    """Keys in alphabetical order, as Quay's jsonify renders these views."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def _http_date(value) -> str | None:
    return format_datetime(value, usegmt=True) if value is not None else None


def _key_views(db: DbSession, settings: Settings, keys: list[ServiceKey]) -> list[dict[str, Any]]:
    approvers = [k.approval.approver for k in keys if k.approval and k.approval.approver]
    approver_views = superuser_user_views(db, settings, approvers)
    views = []
    for key in keys:
        approval = None
        if key.approval is not None:
            approver = key.approval.approver
            approval = {
                "approval_type": key.approval.approval_type,
                "approved_date": _http_date(key.approval.approved_date),
                "approver": approver_views[approver.id] if approver is not None else None,
                "notes": key.approval.notes,
            }
        views.append(
            {
                "approval": approval,
                "created_date": _http_date(key.created_date),
                "expiration_date": _http_date(key.expiration_date),
                "jwk": admin.jwk_of(key),
                "kid": key.kid,
                "metadata": admin.metadata_of(key),
                "name": key.name,
                "rotation_duration": key.rotation_duration,
                "service": key.service,
            }
        )
    return views


def _actor(request: Request, auth: AuthContext) -> Actor:
    return Actor(auth, client_ip(request))


def _key_to_change(
    db: DbSession,
    auth: AuthContext,
    settings: Settings,
    kid: str,
    body: dict[str, Any] | None = None,
    schema: dict[str, Any] | None = None,
) -> ServiceKey:
    """The checks every change of a key makes, in Quay's order, then the key."""
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    if schema is not None:
        check_body(schema, body)
    require_superuser(auth)
    return admin.require_key(db, settings, kid)


def _key_view(db: DbSession, settings: Settings, kid: str) -> Response:
    key = admin.require_key(db, settings, kid)
    return SortedJSONResponse(_key_views(db, settings, [key])[0])


_EXPIRATION = {
    "description": "When the key expires, in Unix seconds; null for never",
    "anyOf": [{"type": "number"}, {"type": "null"}],
}
_NAME = {"type": "string", "description": "A friendly name for the key"}
_METADATA = {"type": "object", "description": "Anything to keep with the key"}
# Quay's schemas for the service-key bodies.
CREATE_KEY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A service key the superuser creates (and so approves)",
    "required": ["service", "expiration"],
    "properties": {
        "service": {"type": "string", "description": "The service the key signs for"},
        "name": _NAME,
        "metadata": _METADATA,
        "notes": {"type": "string", "description": "Notes kept with the approval"},
        "expiration": _EXPIRATION,
    },
}
CHANGE_KEY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Changes to a service key",
    "properties": {"name": _NAME, "metadata": _METADATA, "expiration": _EXPIRATION},
}
APPROVE_KEY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The approval of a service key",
    "properties": {"notes": {"type": "string", "description": "Notes kept with the approval"}},
}


@router.get("/api/v1/superuser/keys", operation_id="listServiceKeys")
def list_service_keys(db: DbDep, auth: AuthDep, settings: SettingsDep) -> Response:
    require_superuser_feature(settings)
    require_superuser_reader(auth)
    return SortedJSONResponse({"keys": _key_views(db, settings, admin.list_keys(db, settings))})


@router.post(
    "/api/v1/superuser/keys",
    operation_id="createServiceKey",
    openapi_extra=json_body_schema(CREATE_KEY_SCHEMA),
)
def create_service_key(
    body: JsonBody, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> Response:
    """Answers 200 (not 201): Quay's UI and tests expect that."""
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    check_body(CREATE_KEY_SCHEMA, body)
    require_superuser(auth)
    created = admin.create_by_superuser(
        db,
        settings,
        service=body["service"],
        name=body.get("name") or "",
        metadata=body.get("metadata") or {},
        notes=body.get("notes") or "",
        expiration=admin.expiration_from_unix(body["expiration"]),
        actor=_actor(request, auth),
    )
    key = created.key
    db.commit()
    return SortedJSONResponse(
        {
            "kid": key.kid,
            "name": key.name,
            "service": key.service,
            "public_key": created.public_pem,
            "private_key": created.private_pem,
        }
    )


@router.get("/api/v1/superuser/keys/{kid}", operation_id="getServiceKey")
def get_service_key(kid: str, db: DbDep, auth: AuthDep, settings: SettingsDep) -> Response:
    require_superuser_feature(settings)
    require_superuser_reader(auth)
    return _key_view(db, settings, kid)


@router.put(
    "/api/v1/superuser/keys/{kid}",
    operation_id="updateServiceKey",
    openapi_extra=json_body_schema(CHANGE_KEY_SCHEMA),
)
def update_service_key(
    kid: str,
    body: JsonBody,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> Response:
    key = _key_to_change(db, auth, settings, kid, body, CHANGE_KEY_SCHEMA)
    actor = _actor(request, auth)
    if "expiration" in body:
        expiration = admin.expiration_from_unix(body["expiration"])
        admin.change_expiration(db, key, expiration, actor, logged_name=body.get("name", key.name))
        # Quay commits the new expiration before looking at the name.
        db.commit()
    if "name" in body or "metadata" in body:
        admin.change_details(db, key, body.get("name"), body.get("metadata"), actor)
        db.commit()
    return _key_view(db, settings, kid)


@router.delete("/api/v1/superuser/keys/{kid}", operation_id="deleteServiceKey")
def delete_service_key(
    kid: str, request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> Response:
    key = _key_to_change(db, auth, settings, kid)
    admin.delete_by_superuser(db, settings, key, _actor(request, auth))
    db.commit()
    return Response(status_code=204)


@router.post(
    "/api/v1/superuser/approvedkeys/{kid}",
    operation_id="approveServiceKey",
    openapi_extra=json_body_schema(APPROVE_KEY_SCHEMA),
)
def approve_service_key(
    kid: str,
    body: JsonBody,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    settings: SettingsDep,
) -> Response:
    """201 with an empty body, also when the key was already approved."""
    key = _key_to_change(db, auth, settings, kid, body, APPROVE_KEY_SCHEMA)
    if admin.approve(db, key, body.get("notes", ""), _actor(request, auth)):
        db.commit()
    return Response(status_code=201)
