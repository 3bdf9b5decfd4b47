"""The signed-in user's authorized applications (Quay's UserAuthorizationList/UserAuthorization)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from cargohold.api.avatar import avatar
from cargohold.api.deps import AuthDep, DbDep, SettingsDep
from cargohold.api.errors import not_found, unauthorized
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext, Scope
from cargohold.config import Settings
from cargohold.db.models.accounts import OAuthAccessToken, User
from cargohold.domain import oauth, user_authorizations

router = ApiRouter(tags=["user"])

PATH = "/api/v1/user/authorizations"


def _user_admin(auth: AuthContext) -> User:
    if auth.user is None or auth.user.robot or not auth.can_admin_self():
        raise unauthorized(auth)
    return auth.user


def _scopes(scope_string: str) -> list[dict[str, Any]]:
    known = {scope.value: scope for scope in Scope}
    granted = sorted(
        {known[item] for item in scope_string.replace(",", " ").split() if item in known}
    )
    return [
        {
            "title": info.title,
            "scope": info.scope.value,
            "description": info.description,
            "icon": info.icon,
            "dangerous": info.dangerous,
        }
        for info in (oauth.SCOPE_INFO[scope] for scope in granted if scope in oauth.SCOPE_INFO)
    ]


def _view(settings: Settings, token: OAuthAccessToken) -> dict[str, Any]:
    app = token.application
    org = app.organization
    return {
        "application": {
            "name": app.name,
            "description": app.description,
            "url": app.application_uri,
            "avatar": avatar(settings, app.name, app.avatar_email or org.email, "app"),
            "organization": {
                "name": org.username,
                "avatar": avatar(settings, org.username, org.email, "org"),
            },
        },
        "scopes": _scopes(token.scope),
        "uuid": token.uuid,
    }


@router.get(PATH, operation_id="listUserAuthorizations")
def list_authorizations(db: DbDep, auth: AuthDep, settings: SettingsDep) -> dict[str, Any]:
    user = _user_admin(auth)
    tokens = user_authorizations.list_authorizations(db, user)
    return {"authorizations": [_view(settings, token) for token in tokens]}


def _authorization(db: DbDep, auth: AuthContext, token_uuid: str) -> OAuthAccessToken:
    token = user_authorizations.get_authorization(db, _user_admin(auth), token_uuid)
    if token is None:
        raise not_found()
    return token


@router.get(PATH + "/{token_uuid}", operation_id="getUserAuthorization")
def get_authorization(
    token_uuid: str, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    return _view(settings, _authorization(db, auth, token_uuid))


@router.delete(PATH + "/{token_uuid}", operation_id="deleteUserAuthorization")
def delete_authorization(token_uuid: str, db: DbDep, auth: AuthDep) -> Response:
    user_authorizations.revoke_authorization(db, _authorization(db, auth, token_uuid))
    db.commit()
    return Response(status_code=204)
