"""The OAuth authorizations a user granted to applications: list, inspect, revoke."""

from __future__ import annotations

from typing import Any, cast

from fastapi import Response

from cargohold.api.deps import AuthDep, DbDep, SettingsDep, require_user
from cargohold.api.errors import unauthorized
from cargohold.api.oauth_views import application_summary, scope_string_information
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import OAuthAccessToken, OAuthApplication, User
from cargohold.domain import user_authorizations

router = ApiRouter(tags=["user"])

BASE = "/api/v1/user/authorizations"


def _user_admin(auth: AuthContext) -> User:
    user = require_user(auth)
    if user.robot or not auth.can_admin_self():
        raise unauthorized(auth)
    return user


def authorization_view(settings: Settings, token: OAuthAccessToken) -> dict[str, Any]:
    """A grant's view; grants always have an application (see list_authorizations)."""
    application = cast(OAuthApplication, token.application)
    return {
        "application": application_summary(settings, application),
        "scopes": scope_string_information(token.scope),
        "uuid": token.uuid,
    }


@router.get(BASE, operation_id="listUserAuthorizations")
def list_user_authorizations(db: DbDep, settings: SettingsDep, auth: AuthDep) -> dict[str, Any]:
    user = _user_admin(auth)
    tokens = user_authorizations.list_authorizations(db, user)
    return {"authorizations": [authorization_view(settings, token) for token in tokens]}


@router.get(BASE + "/{access_token_uuid}", operation_id="getUserAuthorization")
def get_user_authorization(
    access_token_uuid: str, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    token = user_authorizations.get_authorization(db, _user_admin(auth), access_token_uuid)
    return authorization_view(settings, token)


@router.delete(
    BASE + "/{access_token_uuid}", operation_id="deleteUserAuthorization", status_code=204
)
def delete_user_authorization(access_token_uuid: str, db: DbDep, auth: AuthDep) -> Response:
    """Revoke the grant: the application's token stops working at once."""
    user_authorizations.revoke_authorization(db, _user_admin(auth), access_token_uuid)
    db.commit()
    return Response(status_code=204)
