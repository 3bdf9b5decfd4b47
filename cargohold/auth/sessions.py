"""Browser session contents and their signature, without the HTTP around them.

A session is a small dict (the user, the user's session token, a CSRF token, the login time)
signed with SECRET_KEY. The cookie that carries it belongs to the HTTP layer
(`cargohold/api/sessions.py`).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from cargohold.config import Settings

_SALT = "cargohold-session"


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.SECRET_KEY, salt=_SALT)


def encode_session(settings: Settings, data: dict[str, Any]) -> str:
    return _serializer(settings).dumps(data)


def decode_session(settings: Settings, raw: str) -> dict[str, Any]:
    """The session a signed value holds; empty when forged, expired or not a session."""
    try:
        data = _serializer(settings).loads(raw, max_age=settings.session_timeout_s)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def login_session(user_uuid: str, session_token: str) -> dict[str, Any]:
    return {
        "user_uuid": user_uuid,
        "session_token": session_token,
        "login_time": time.time(),
        "csrf": new_csrf_token(),
    }
