"""Organizations: create, view, change, delete, collaborators."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from cargohold.api.deps import (
    AuthDep,
    DbDep,
    JsonBody,
    SettingsDep,
    client_ip,
    require_fresh_login,
    require_user,
    validate_body,
)
from cargohold.api.errors import not_found, unauthorized
from cargohold.api.orgauth import organization_for_admin
from cargohold.api.quota_views import namespace_quota_fields
from cargohold.api.routing import ApiRouter, json_body_schema
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.session import DbSession
from cargohold.domain import organizations, quota
from cargohold.domain.avatars import avatar
from cargohold.domain.permissions import can_admin_organization, team_role_in_namespace

router = ApiRouter(tags=["organization"])


class NewOrg(BaseModel):
    model_config = ConfigDict(extra="ignore", title="NewOrg")

    name: StrictStr
    email: StrictStr = Field(default=None)
    contact_email: StrictStr = Field(default=None)
    recaptcha_response: StrictStr = Field(default=None)


class UpdateOrg(BaseModel):
    model_config = ConfigDict(extra="ignore", title="UpdateOrg")

    email: StrictStr = Field(default=None)
    contact_email: StrictStr | None = None
    invoice_email: StrictBool = Field(default=None)
    invoice_email_address: StrictStr | None = None
    tag_expiration_s: StrictInt | None = Field(default=None, ge=0)


def organization_view(
    db: DbSession, settings: Settings, auth: AuthContext, org: User, *, with_teams: bool = False
) -> dict[str, Any]:
    caller = auth.user
    is_admin = can_admin_organization(db, auth, org) or auth.is_superuser
    is_member = caller is not None and team_role_in_namespace(db, caller, org) is not None
    view: dict[str, Any] = {
        "name": org.username,
        "email": org.email if is_admin and organizations.is_valid_email(org.email) else "",
        "avatar": avatar(settings, org.username, org.email, "user"),
        "is_admin": is_admin,
        "is_member": is_member,
    }
    if (
        with_teams
        or is_member
        or auth.is_global_readonly_superuser
        or auth.has_superuser_full_access
    ):
        summaries = organizations.team_summaries(db, org, caller)
        view["teams"] = {
            s.team.name: {
                "name": s.team.name,
                "description": s.team.description or "",
                "role": s.team.role.value,
                "avatar": avatar(settings, s.team.name, s.team.name, "team"),
                "can_view": is_admin or s.caller_is_member,
                "repo_count": s.repo_count,
                "member_count": s.member_count,
                "is_synced": False,
            }
            for s in summaries
        }
        view["ordered_teams"] = [s.team.name for s in summaries]
    if quota.quota_fields_enabled(settings) and (
        is_admin or is_member or auth.is_global_readonly_superuser or auth.has_superuser_full_access
    ):
        view.update(namespace_quota_fields(db, settings, [org.id])[org.id])
    if is_admin:
        view["invoice_email"] = org.invoice_email
        view["invoice_email_address"] = org.invoice_email_address
        view["tag_expiration_s"] = org.tag_expiration_s
        view["is_free_account"] = True
    return view


@router.post(
    "/api/v1/organization/",
    operation_id="createOrganization",
    status_code=201,
    openapi_extra=json_body_schema(NewOrg),
)
def create_organization(
    request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep, raw: JsonBody
) -> JSONResponse:
    """Create an organization owned by the caller."""
    user = require_user(auth)
    if user.robot or not auth.can_admin_self():
        raise unauthorized(auth)
    if settings.FEATURE_SUPERUSERS_ORG_CREATION_ONLY and not auth.is_superuser:
        raise unauthorized(auth)
    body = validate_body(NewOrg, raw)
    organizations.create_organization(
        db,
        settings,
        name=body.name,
        email=body.contact_email or body.email,
        creator=user,
        auth=auth,
        ip=client_ip(request),
    )
    db.commit()
    return JSONResponse("Created", status_code=201)


@router.get("/api/v1/organization/{orgname}", operation_id="getOrganization")
def get_organization(orgname: str, db: DbDep, settings: SettingsDep, auth: AuthDep) -> dict:
    """The organization; teams and billing details depend on the caller's rights."""
    org = organizations.get_organization(db, orgname)
    if org is None:
        raise not_found()
    return organization_view(db, settings, auth, org)


@router.put(
    "/api/v1/organization/{orgname}",
    operation_id="changeOrganizationDetails",
    openapi_extra=json_body_schema(UpdateOrg),
)
def change_organization(
    orgname: str,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    auth: AuthDep,
    raw: JsonBody,
) -> dict:
    """Change the contact email, invoicing settings or tag expiration window."""
    org = organization_for_admin(db, auth, orgname)
    body = validate_body(UpdateOrg, raw)
    email_key = "contact_email" if "contact_email" in raw else "email"
    changes = organizations.DetailChanges(
        invoice_email=body.invoice_email,
        invoice_email_address=body.invoice_email_address,
        set_invoice_email_address="invoice_email_address" in raw,
        email=getattr(body, email_key),
        set_email=email_key in raw,
        tag_expiration_s=body.tag_expiration_s,
    )
    organizations.change_details(db, settings, org, changes, auth=auth, ip=client_ip(request))
    db.commit()
    return organization_view(db, settings, auth, org, with_teams=True)


@router.delete(
    "/api/v1/organization/{orgname}",
    operation_id="deleteAdminedOrganization",
    status_code=204,
)
def delete_organization(
    orgname: str, request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> Response:
    """Delete the organization: it disappears at once, its storage is reclaimed later."""
    require_fresh_login(auth, settings)
    org = organization_for_admin(db, auth, orgname)
    organizations.delete_organization(db, org, auth=auth, ip=client_ip(request))
    db.commit()
    return Response(status_code=204)


@router.get(
    "/api/v1/organization/{orgname}/collaborators",
    operation_id="getOrganizationCollaborators",
)
def get_collaborators(orgname: str, db: DbDep, settings: SettingsDep, auth: AuthDep) -> dict:
    """Users outside every team who hold direct permissions on the org's repositories."""
    org = organization_for_admin(db, auth, orgname, read_only=True)
    return {
        "collaborators": [
            {
                "kind": "user",
                "name": c.user.username,
                "avatar": avatar(settings, c.user.username, c.user.email, "user"),
                "repositories": c.repositories,
            }
            for c in organizations.collaborators(db, org)
        ]
    }
