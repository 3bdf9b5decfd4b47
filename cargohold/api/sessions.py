"""The browser session cookie: reading, writing, clearing and renewing it.

The session's contents and signature are `cargohold.auth.sessions`; this module carries them
in an HttpOnly cookie.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cargohold.auth.sessions import decode_session, encode_session, login_session
from cargohold.config import Settings

# A readable companion of the HttpOnly session cookie: it only says that a user is signed in,
# so the web UI knows the signed-out state without an API call that answers 401.
SIGNED_IN_SUFFIX = "_signed_in"


def load_session(request: Request, settings: Settings) -> dict[str, Any]:
    raw = request.cookies.get(settings.SESSION_COOKIE_NAME)
    if not raw:
        return {}
    return decode_session(settings, raw)


def save_session(response: Response, settings: Settings, data: dict[str, Any]) -> None:
    """Permanent sessions (Quay's default) last SESSION_TIMEOUT; others end with the browser."""
    permanent = settings.FEATURE_PERMANENT_SESSIONS
    response.set_cookie(
        settings.SESSION_COOKIE_NAME,
        encode_session(settings, data),
        max_age=settings.session_timeout_s if permanent else None,
        httponly=True,
        samesite="lax",
        secure=settings.session_cookie_secure,
    )
    if data.get("user_uuid"):
        response.set_cookie(
            settings.SESSION_COOKIE_NAME + SIGNED_IN_SUFFIX,
            "1",
            max_age=settings.session_timeout_s if permanent else None,
            samesite="lax",
            secure=settings.session_cookie_secure,
        )
    else:
        _clear_marker(response, settings)


def _clear_marker(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        settings.SESSION_COOKIE_NAME + SIGNED_IN_SUFFIX,
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
    _clear_marker(response, settings)


def start_login(response: Response, settings: Settings, user_uuid: str, session_token: str) -> str:
    """Sign a user in on this response; the new CSRF token goes out in X-Next-CSRF-Token."""
    data = login_session(user_uuid, session_token)
    save_session(response, settings, data)
    response.headers["X-Next-CSRF-Token"] = data["csrf"]
    return data["csrf"]


def mark_session_active(request: Request, data: dict[str, Any]) -> None:
    """Record that this request used a valid signed-in session, for SessionRefresh."""
    request.state.active_session = data


class SessionRefresh:
    """Quay's permanent sessions expire SESSION_TIMEOUT after the last request, not the login.

    A response to a request that used a valid session re-signs its cookie, unless the
    endpoint set the cookie itself (sign-in, sign-out). Non-permanent sessions are never
    renewed, so they end SESSION_TIMEOUT after sign-in at the latest.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._cookie_prefix = f"{settings.SESSION_COOKIE_NAME}=".encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.settings.FEATURE_PERMANENT_SESSIONS:
            await self.app(scope, receive, send)
            return

        async def send_refreshed(message: Message) -> None:
            if message["type"] == "http.response.start":
                data = scope.get("state", {}).get("active_session")
                headers = list(message.get("headers", []))
                if data and not self._sets_session_cookie(headers):
                    message["headers"] = headers + self._cookie_headers(data)
            await send(message)

        await self.app(scope, receive, send_refreshed)

    def _sets_session_cookie(self, headers: list[tuple[bytes, bytes]]) -> bool:
        return any(k == b"set-cookie" and v.startswith(self._cookie_prefix) for k, v in headers)

    def _cookie_headers(self, data: dict[str, Any]) -> list[tuple[bytes, bytes]]:
        carrier = Response()
        save_session(carrier, self.settings, data)
        return [(k, v) for k, v in carrier.raw_headers if k == b"set-cookie"]
