"""Token requests an organization admin assigned to the caller: /api/v1/user/assignedauthorization."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from cargohold.api.deps import AuthDep, DbDep, SettingsDep, require_user
from cargohold.api.errors import not_found, unauthorized
from cargohold.api.oauth_views import application_summary, scope_string_information
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import OAuthAssignedToken, User
from cargohold.domain import oauth_grants

router = ApiRouter(tags=["user"])


def _assignee(settings: Settings, auth: AuthContext) -> User:
    if not settings.FEATURE_ASSIGN_OAUTH_TOKEN:
        raise not_found()
    user = require_user(auth)
    if not auth.can_admin_self():
        raise unauthorized(auth)
    return user


def _view(settings: Settings, assignment: OAuthAssignedToken) -> dict[str, Any]:
    app = assignment.application
    return {
        "application": {
            **application_summary(settings, app),
            "clientId": app.client_id,
        },
        "uuid": assignment.uuid,
        "redirectUri": assignment.redirect_uri,
        "scopes": scope_string_information(assignment.scope),
        "responseType": assignment.response_type,
    }


@router.get("/api/v1/user/assignedauthorization", operation_id="listAssignedAuthorizations")
def list_assigned_authorizations(db: DbDep, settings: SettingsDep, auth: AuthDep) -> dict[str, Any]:
    """The caller's pending assignments; their notifications count as read once listed."""
    user = _assignee(settings, auth)
    assignments = oauth_grants.list_assignments(db, user)
    oauth_grants.clear_viewed_notifications(db, user)
    db.commit()
    return {"authorizations": [_view(settings, assignment) for assignment in assignments]}


@router.delete(
    "/api/v1/user/assignedauthorization/{assigned_authorization_uuid}",
    operation_id="deleteAssignedAuthorization",
    status_code=204,
)
def delete_assigned_authorization(
    assigned_authorization_uuid: str, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> Response:
    """Reject an assignment: it is gone, and no token is issued for it."""
    user = _assignee(settings, auth)
    oauth_grants.reject_assignment(db, user, assigned_authorization_uuid)
    db.commit()
    return Response(status_code=204)
