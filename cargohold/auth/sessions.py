"""The browser session: a signed cookie holding the user, a CSRF token and the login time."""

from __future__ import annotations

import secrets
import time
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from cargohold.config import Settings

_SALT = "cargohold-session"


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.SECRET_KEY, salt=_SALT)


def load_session(request: Request, settings: Settings) -> dict[str, Any]:
    raw = request.cookies.get(settings.SESSION_COOKIE_NAME)
    if not raw:
        return {}
    try:
        data = _serializer(settings).loads(raw, max_age=settings.session_timeout_s)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def save_session(response: Response, settings: Settings, data: dict[str, Any]) -> None:
    response.set_cookie(
        settings.SESSION_COOKIE_NAME,
        _serializer(settings).dumps(data),
        max_age=settings.session_timeout_s,
        httponly=True,
        samesite="lax",
        secure=settings.session_cookie_secure,
    )


def clear_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        settings.SESSION_COOKIE_NAME,
        httponly=True,
        samesite="lax",
        secure=settings.session_cookie_secure,
    )


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def login_session(user_uuid: str, session_token: str) -> dict[str, Any]:
    return {
        "user_uuid": user_uuid,
        "session_token": session_token,
        "login_time": time.time(),
        "csrf": new_csrf_token(),
    }


def start_login(response: Response, settings: Settings, user_uuid: str, session_token: str) -> str:
    """Sign a user in on this response; the new CSRF token goes out in X-Next-CSRF-Token."""
    data = login_session(user_uuid, session_token)
    save_session(response, settings, data)
    response.headers["X-Next-CSRF-Token"] = data["csrf"]
    return data["csrf"]
