"""App-specific tokens of the signed-in user: /api/v1/user/apptoken[/{uuid}]."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, Field, StrictStr

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
from cargohold.api.errors import NOT_FOUND_TEXT, MessageError, unauthorized
from cargohold.api.query import truthy
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import AppSpecificToken, User
from cargohold.domain import app_tokens
from cargohold.domain.dates import format_date
from cargohold.domain.teams import Actor

router = ApiRouter(tags=["appspecifictokens"])


class NewToken(BaseModel):
    title: StrictStr = Field(max_length=255)


def _token_view(settings: Settings, token: AppSpecificToken, *, with_code: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "uuid": token.uuid,
        "title": token.title,
        "last_accessed": format_date(token.last_accessed),
        "created": format_date(token.created),
        "expiration": format_date(token.expiration),
    }
    if with_code:
        view["token_code"] = app_tokens.token_code(settings, token)
    return view


def _caller(settings: Settings, auth: AuthContext) -> User:
    if not settings.FEATURE_APP_SPECIFIC_TOKENS:
        raise MessageError(404, NOT_FOUND_TEXT)
    user = require_user(auth)
    if not auth.can_admin_self():
        raise unauthorized(auth)
    return user


@router.get("/api/v1/user/apptoken", operation_id="listAppTokens")
def list_app_tokens(
    request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    """The caller's tokens, without their codes."""
    user = _caller(settings, auth)
    only_expiring = truthy(request, "expiring") if "expiring" in request.query_params else None
    tokens = app_tokens.list_tokens(db, settings, user, only_expiring=bool(only_expiring))
    return {
        "tokens": [_token_view(settings, token, with_code=False) for token in tokens],
        "only_expiring": only_expiring,
    }


@router.post("/api/v1/user/apptoken", operation_id="createAppToken")
def create_app_token(
    request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep, raw: JsonBody
) -> dict[str, Any]:
    """A new token; its code is in the response (and can be read again later)."""
    _caller(settings, auth)
    require_fresh_login(auth, settings)
    body = validate_body(NewToken, raw)
    token, _ = app_tokens.create_token(db, settings, Actor(auth, client_ip(request)), body.title)
    db.commit()
    return {"token": _token_view(settings, token, with_code=True)}


@router.get("/api/v1/user/apptoken/{token_uuid}", operation_id="getAppToken")
def get_app_token(
    token_uuid: str, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    user = _caller(settings, auth)
    require_fresh_login(auth, settings)
    token = app_tokens.find_token(db, user, token_uuid, include_expired=False)
    return {"token": _token_view(settings, token, with_code=True)}


@router.delete("/api/v1/user/apptoken/{token_uuid}", operation_id="revokeAppToken", status_code=204)
def revoke_app_token(
    token_uuid: str, request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> Response:
    _caller(settings, auth)
    require_fresh_login(auth, settings)
    app_tokens.revoke_token(db, Actor(auth, client_ip(request)), token_uuid)
    db.commit()
    return Response(status_code=204)
