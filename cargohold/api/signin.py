"""Browser sessions: /csrf_token, /api/v1/signin, /api/v1/signin/verify and /api/v1/signout."""

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
    require_user,
    validate_body,
)
from cargohold.api.errors import NOT_FOUND_TEXT, JsonError, MessageError, unauthorized
from cargohold.api.routing import ApiRouter
from cargohold.api.sessions import clear_session, load_session, save_session, start_login
from cargohold.auth.credentials import check_password, find_user_by_login
from cargohold.auth.sessions import new_csrf_token
from cargohold.domain import sign_ins, teams

router = ApiRouter(tags=["user"])

INVALID_CREDENTIALS = "Invalid Username or Password"
USER_DISABLED = "This user has been disabled. Please contact your administrator."


@router.get("/csrf_token", operation_id="getCsrfToken")
def csrf_token(request: Request, response: Response, settings: SettingsDep) -> dict[str, str]:
    """The session's CSRF token, starting an anonymous session when there is none."""
    data = load_session(request, settings)
    if not data.get("csrf"):
        data["csrf"] = new_csrf_token()
    save_session(response, settings, data)
    return {"csrf_token": data["csrf"]}


class Signin(BaseModel):
    username: StrictStr
    password: StrictStr
    invite_code: StrictStr = Field(default=None)


def _signin_refused(message: str | None, *, needs_verification: bool = False) -> JsonError:
    return JsonError(
        403,
        {
            "needsEmailVerification": needs_verification,
            "invalidCredentials": not needs_verification,
            "message": message,
        },
    )


@router.post("/api/v1/signin", operation_id="signinUser")
def signin_user(
    request: Request,
    response: Response,
    db: DbDep,
    settings: SettingsDep,
    auth: AuthDep,
    raw: JsonBody,
) -> dict[str, bool]:
    """Sign in with a username (or email) and password; sets the session cookie."""
    if not settings.FEATURE_DIRECT_LOGIN:
        raise MessageError(404, NOT_FOUND_TEXT)
    body = validate_body(Signin, raw)
    user = find_user_by_login(db, body.username)
    ip, useragent = client_ip(request), request.headers.get("user-agent")
    if user is None or not check_password(db, settings, user, body.password):
        if user is not None:
            sign_ins.record_login_failure(
                db, settings, user, ip=ip, useragent=useragent, message=INVALID_CREDENTIALS
            )
            db.commit()
        raise _signin_refused(INVALID_CREDENTIALS)
    if not user.enabled:
        raise _signin_refused(USER_DISABLED)
    if not user.verified and teams.invite_confirms_email(db, body.invite_code, user):
        db.commit()
    if not user.verified:
        raise _signin_refused(None, needs_verification=True)
    sign_ins.record_login(db, settings, user, method="quayauth", ip=ip, useragent=useragent)
    db.commit()
    start_login(response, settings, user.uuid, user.session_token)
    return {"success": True}


class Verify(BaseModel):
    password: StrictStr


@router.post("/api/v1/signin/verify", operation_id="verifyUser")
def verify_user(
    response: Response,
    db: DbDep,
    settings: SettingsDep,
    auth: AuthDep,
    raw: JsonBody,
) -> dict[str, bool]:
    """Confirm the password again, which renews the fresh-login time of the session."""
    user = require_user(auth)
    if not auth.can_admin_self():
        raise unauthorized(auth)
    body = validate_body(Verify, raw)
    if not check_password(db, settings, user, body.password):
        raise JsonError(403, {"message": INVALID_CREDENTIALS, "invalidCredentials": True})
    start_login(response, settings, user.uuid, user.session_token)
    return {"success": True}


@router.post("/api/v1/signout", operation_id="logout")
def logout(
    request: Request, response: Response, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    """End every session of the caller and clear this one."""
    if auth.user is not None:
        sign_ins.sign_out(db, auth.user, auth=auth, ip=client_ip(request))
        db.commit()
    clear_session(response, settings)
    return {"success": True}
