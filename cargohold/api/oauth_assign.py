"""Assigned OAuth tokens: an organization admin offers a user a token of one of the
organization's applications (POST /oauth/authorize/assignuser); the user sees the offers
(/api/v1/user/assignedauthorization), declines them, or accepts one by approving the app."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from cargohold.api.deps import AuthDep, DbDep, SettingsDep, client_ip, require_user
from cargohold.api.errors import MessageError, not_found, unauthorized
from cargohold.api.oauth_views import application_summary, scope_string_information
from cargohold.api.routing import ApiRouter
from cargohold.api.superuser_access import require_feature
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import OAuthAssignedToken, User
from cargohold.domain import accounts, oauth
from cargohold.domain.audit import log_action
from cargohold.domain.permissions import can_admin_organization

router = ApiRouter(tags=["user"])

ASSIGNED = "Token assigned successfully"
_ASSIGN_PARAMS = ("client_id", "redirect_uri", "scope", "username")


def _required_params(request: Request) -> dict[str, str]:
    for name in _ASSIGN_PARAMS:
        if name not in request.query_params:
            raise MessageError(400, f"Required param: {name}")
    return {name: request.query_params[name] for name in _ASSIGN_PARAMS}


@router.post("/oauth/authorize/assignuser", operation_id="assignOAuthTokenToUser")
def assign_user_to_app(
    request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> Response:
    """Offer a user a token of an application; only the organization's admins may."""
    params = _required_params(request)
    require_feature(settings.FEATURE_ASSIGN_OAUTH_TOKEN)
    caller = require_user(auth)
    assignee = accounts.get_user(db, params["username"])
    if assignee is None or not assignee.enabled:
        raise MessageError(404, "Not Found")
    app = oauth.find_application(db, params["client_id"])
    if app is None:
        raise MessageError(404, "Not Found")
    if not can_admin_organization(db, auth, app.organization):
        raise unauthorized(auth)
    oauth.assign_token(
        db,
        settings,
        app,
        assignee,
        redirect_uri=params["redirect_uri"],
        scope=params["scope"],
        response_type=request.query_params.get("response_type", "code"),
    )
    log_action(
        db,
        "oauth_token_assigned",
        namespace=app.organization,
        auth=auth,
        ip=client_ip(request),
        metadata={
            "assigning_user": caller.username,
            "assigned_user": assignee.username,
            "application": app.name,
            "client_id": app.client_id,
        },
    )
    db.commit()
    if request.query_params.get("format", "html").lower() == "json":
        return JSONResponse({"message": ASSIGNED})
    return HTMLResponse(f"<!doctype html><html><body><p>{ASSIGNED}</p></body></html>")


def _user_admin(auth: AuthContext) -> User:
    user = require_user(auth)
    if user.robot or not auth.can_admin_self():
        raise unauthorized(auth)
    return user


def assigned_authorization_view(settings: Settings, assignment: OAuthAssignedToken) -> dict:
    application: dict[str, Any] = application_summary(settings, assignment.application)
    application["clientId"] = assignment.application.client_id
    return {
        "application": application,
        "uuid": assignment.uuid,
        "redirectUri": assignment.redirect_uri,
        "scopes": scope_string_information(assignment.scope),
        "responseType": assignment.response_type,
    }


@router.get("/api/v1/user/assignedauthorization", operation_id="listAssignedAuthorizations")
def list_assigned_authorizations(db: DbDep, settings: SettingsDep, auth: AuthDep) -> dict[str, Any]:
    """The caller's pending offers; looking at them clears their notifications."""
    require_feature(settings.FEATURE_ASSIGN_OAUTH_TOKEN)
    user = _user_admin(auth)
    assignments = oauth.assigned_authorizations(db, user)
    oauth.clear_assignment_notifications(db, user)
    db.commit()
    return {"authorizations": [assigned_authorization_view(settings, item) for item in assignments]}


@router.delete(
    "/api/v1/user/assignedauthorization/{assigned_authorization_uuid}",
    operation_id="deleteAssignedAuthorization",
    status_code=204,
)
def delete_assigned_authorization(
    assigned_authorization_uuid: str, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> Response:
    """Decline an offer."""
    require_feature(settings.FEATURE_ASSIGN_OAUTH_TOKEN)
    assignment = oauth.find_assignment(db, _user_admin(auth), assigned_authorization_uuid)
    if assignment is None:
        raise not_found()
    db.delete(assignment)
    db.commit()
    return Response(status_code=204)
