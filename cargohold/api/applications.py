"""OAuth applications of an organization."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from cargohold.api.deps import AuthDep, DbDep, JsonBody, SettingsDep, client_ip, validate_body
from cargohold.api.errors import invalid_request, unauthorized
from cargohold.api.orgauth import organization_for_admin
from cargohold.api.routing import ApiRouter, json_body_schema
from cargohold.auth.context import AuthContext, AuthKind, Scope, parse_scopes
from cargohold.config import Settings
from cargohold.db.models.accounts import OAuthAccessToken, OAuthApplication
from cargohold.domain import oauth
from cargohold.domain.permissions import can_admin_organization
from cargohold.domain.teams import Actor

router = ApiRouter(tags=["organization"])


class NewApp(BaseModel):
    model_config = ConfigDict(extra="ignore", title="NewApp")

    name: StrictStr
    redirect_uri: StrictStr = Field(default=None)
    application_uri: StrictStr = Field(default=None)
    description: StrictStr = Field(default=None)
    avatar_email: StrictStr = Field(default=None)


class UpdateApp(BaseModel):
    model_config = ConfigDict(extra="ignore", title="UpdateApp")

    name: StrictStr
    redirect_uri: StrictStr
    application_uri: StrictStr
    description: StrictStr = Field(default=None)
    avatar_email: StrictStr = Field(default=None)


def application_view(
    settings: Settings, app: OAuthApplication, *, is_admin: bool
) -> dict[str, Any]:
    return {
        "name": app.name,
        "description": app.description,
        "application_uri": app.application_uri,
        "client_id": app.client_id,
        "client_secret": oauth.client_secret(settings, app) if is_admin else None,
        "redirect_uri": app.redirect_uri if is_admin else None,
        "avatar_email": app.avatar_email if is_admin else None,
    }


def _actor(request: Request, auth: AuthContext) -> Actor:
    return Actor(auth, client_ip(request))


@router.get(
    "/api/v1/organization/{orgname}/applications", operation_id="getOrganizationApplications"
)
def list_applications(orgname: str, db: DbDep, settings: SettingsDep, auth: AuthDep) -> dict:
    """The organization's OAuth applications."""
    org = organization_for_admin(db, auth, orgname, read_only=True)
    is_admin = can_admin_organization(db, auth, org)
    return {
        "applications": [
            application_view(settings, app, is_admin=is_admin)
            for app in oauth.list_applications(db, org)
        ]
    }


@router.post(
    "/api/v1/organization/{orgname}/applications",
    operation_id="createOrganizationApplication",
    openapi_extra=json_body_schema(NewApp),
)
def create_application(
    orgname: str, request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep, raw: JsonBody
) -> dict:
    """Register an OAuth application in the organization."""
    org = organization_for_admin(db, auth, orgname)
    body = validate_body(NewApp, raw)
    fields = oauth.ApplicationFields(
        name=body.name,
        redirect_uri=body.redirect_uri or "",
        application_uri=body.application_uri or "",
        description=body.description or "",
        avatar_email=body.avatar_email,
    )
    app = oauth.create_application(db, settings, org, fields, _actor(request, auth), logged=raw)
    db.commit()
    return application_view(settings, app, is_admin=True)


@router.get(
    "/api/v1/organization/{orgname}/applications/{client_id}",
    operation_id="getOrganizationApplication",
)
def get_application(
    orgname: str, client_id: str, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict:
    """One OAuth application of the organization."""
    org = organization_for_admin(db, auth, orgname, read_only=True)
    app = oauth.require_application(db, org, client_id)
    return application_view(settings, app, is_admin=can_admin_organization(db, auth, org))


@router.put(
    "/api/v1/organization/{orgname}/applications/{client_id}",
    operation_id="updateOrganizationApplication",
    openapi_extra=json_body_schema(UpdateApp),
)
def update_application(
    orgname: str,
    client_id: str,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    auth: AuthDep,
    raw: JsonBody,
) -> dict:
    """Change an application's name, URIs, description or avatar email."""
    org = organization_for_admin(db, auth, orgname)
    app = oauth.require_application(db, org, client_id)
    body = validate_body(UpdateApp, raw)
    fields = oauth.ApplicationFields(
        name=body.name,
        redirect_uri=body.redirect_uri,
        application_uri=body.application_uri,
        description=body.description or "",
        avatar_email=body.avatar_email,
    )
    oauth.update_application(db, app, fields, _actor(request, auth), logged=raw)
    db.commit()
    return application_view(settings, app, is_admin=True)


@router.delete(
    "/api/v1/organization/{orgname}/applications/{client_id}",
    operation_id="deleteOrganizationApplication",
    status_code=204,
)
def delete_application(
    orgname: str, client_id: str, request: Request, db: DbDep, auth: AuthDep
) -> Response:
    """Delete an application; every token granted to it stops working."""
    org = organization_for_admin(db, auth, orgname)
    app = oauth.require_application(db, org, client_id)
    oauth.delete_application(db, app, _actor(request, auth))
    db.commit()
    return Response(status_code=204)


@router.post(
    "/api/v1/organization/{orgname}/applications/{client_id}/resetclientsecret",
    operation_id="resetOrganizationApplicationClientSecret",
)
def reset_client_secret(
    orgname: str, client_id: str, request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict:
    """Replace the application's client secret."""
    org = organization_for_admin(db, auth, orgname)
    app = oauth.require_application(db, org, client_id)
    oauth.reset_client_secret(db, settings, app, _actor(request, auth))
    db.commit()
    return application_view(settings, app, is_admin=True)


class NewAppToken(BaseModel):
    model_config = ConfigDict(extra="ignore", title="NewApplicationToken")

    name: StrictStr
    scope: StrictStr
    expiration: StrictInt | None = Field(default=None, ge=1)


def token_view(token: OAuthAccessToken, code: str | None = None) -> dict[str, Any]:
    view = {
        "uuid": token.uuid,
        "name": token.name,
        "scope": token.scope,
        "expires_at": iso_date(token.expires_at),
        "created": iso_date(token.created),
        "created_by": token.created_by.username if token.created_by is not None else None,
        "last_accessed": iso_date(token.last_accessed),
    }
    if code is not None:
        view["token"] = code
    return view


def iso_date(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


TOKENS_PATH = "/api/v1/organization/{orgname}/applications/{client_id}/tokens"


@router.get(TOKENS_PATH, operation_id="listOrganizationApplicationTokens")
def list_application_tokens(orgname: str, client_id: str, db: DbDep, auth: AuthDep) -> dict:
    """Live tokens minted for the application (their secrets are never shown again)."""
    org = organization_for_admin(db, auth, orgname)
    app = oauth.require_application(db, org, client_id)
    return {"tokens": [token_view(t) for t in oauth.application_tokens(db, app)]}


@router.post(
    TOKENS_PATH,
    operation_id="createOrganizationApplicationToken",
    status_code=201,
    openapi_extra=json_body_schema(NewAppToken),
)
def create_application_token(
    orgname: str,
    client_id: str,
    request: Request,
    db: DbDep,
    auth: AuthDep,
    raw: JsonBody,
) -> JSONResponse:
    """Mint a token for the application acting as the caller, with scopes the caller holds."""
    org = organization_for_admin(db, auth, orgname)
    app = oauth.require_application(db, org, client_id)
    body = validate_body(NewAppToken, raw)
    name = body.name.strip()
    if not 1 <= len(name) <= 255:
        raise invalid_request("Token name must be between 1 and 255 characters")
    scopes = parse_scopes(body.scope)
    if not scopes:
        raise invalid_request("Invalid scope")
    caller_scopes = oauth.implied_scopes(auth.scopes) if auth.kind is AuthKind.OAUTH else None
    if caller_scopes is not None and not set(scopes) <= caller_scopes:
        raise unauthorized(auth)
    if Scope.SUPERUSER in scopes and auth.user.username not in auth.superuser_names:
        raise unauthorized(auth)
    lifetime = min(body.expiration or oauth.MAX_TOKEN_LIFETIME_S, oauth.MAX_TOKEN_LIFETIME_S)
    token, code = oauth.issue_application_token(
        db, app, scopes, _actor(request, auth), name=name, lifetime_s=lifetime
    )
    db.commit()
    return JSONResponse(token_view(token, code), status_code=201)


@router.delete(
    TOKENS_PATH + "/{token_uuid}",
    operation_id="revokeOrganizationApplicationToken",
    status_code=204,
)
def revoke_application_token(
    orgname: str, client_id: str, token_uuid: str, request: Request, db: DbDep, auth: AuthDep
) -> Response:
    """Revoke one of the application's tokens at once."""
    org = organization_for_admin(db, auth, orgname)
    app = oauth.require_application(db, org, client_id)
    oauth.revoke_application_token(db, app, token_uuid, _actor(request, auth))
    db.commit()
    return Response(status_code=204)
