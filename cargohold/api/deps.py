"""FastAPI dependencies shared by every /api/v1 module: settings, database, caller, body."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from cargohold.api.body_schema import pydantic_error_message
from cargohold.api.errors import (
    BAD_REQUEST_TEXT,
    JsonError,
    MessageError,
    fresh_login_required,
    invalid_request,
    unauthorized,
)
from cargohold.api.sessions import load_session, mark_session_active
from cargohold.auth.context import AuthContext, AuthKind, Scope
from cargohold.auth.credentials import (
    CredentialsError,
    anonymous,
    context_for,
    verify_oauth_token,
)
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.session import DbSession
from cargohold.domain import signed_in, untrusted_json

Model = TypeVar("Model", bound=BaseModel)

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_FAILED = "CSRF token was invalid or missing."


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_db(request: Request) -> Iterator[DbSession]:
    """One session per request. Endpoints commit explicitly; anything uncommitted is rolled back."""
    session = request.app.state.session_factory()
    try:
        yield session
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[DbSession, Depends(get_db)]


def client_ip(request: Request) -> str | None:
    """The caller's address; cargohold.forwarded has put a trusted proxy's word in its place."""
    return request.client.host if request.client else None


def resolve_caller(request: Request, db: DbSession, settings: Settings) -> AuthContext:
    """Bearer token first; a rejected token makes the caller anonymous (no cookie fallback)."""
    session_data = load_session(request, settings)
    request.state.session = session_data
    header = request.headers.get("authorization", "")
    parts = header.split(" ")
    if len(parts) == 2 and parts[0].lower() == "bearer":
        try:
            return verify_oauth_token(db, settings, parts[1])
        except CredentialsError:
            return anonymous(settings)
    user = signed_in.session_user(
        db, session_data.get("user_uuid"), session_data.get("session_token")
    )
    if user is None:
        return anonymous(settings)
    mark_session_active(request, session_data)
    return context_for(
        settings,
        user,
        AuthKind.SESSION,
        {Scope.DIRECT_LOGIN},
        session_login_time=session_data.get("login_time"),
    )


def get_auth(request: Request, db: DbDep, settings: SettingsDep) -> AuthContext:
    """The caller, after authentication and the CSRF check (request_policy did the XHR rule)."""
    cached = getattr(request.state, "auth", None)
    if cached is not None:
        return cached
    auth = resolve_caller(request, db, settings)
    if request.method not in _SAFE_METHODS and auth.kind is not AuthKind.OAUTH:
        require_csrf_token(request)
    request.state.auth = auth
    return auth


def require_csrf_token(request: Request) -> None:
    """The session's CSRF token must come back in X-CSRF-Token or `_csrf_token`: a cross-site
    page can make the browser send the cookie, but cannot read the token."""
    expected = request.state.session.get("csrf")
    presented = request.headers.get("x-csrf-token") or request.query_params.get("_csrf_token")
    if not expected or not presented or not _constant_time_equal(expected, presented):
        # Quay aborts here the registry way: the key is `error`, not `message`.
        raise JsonError(403, {"error": CSRF_FAILED})


def _constant_time_equal(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


AuthDep = Annotated[AuthContext, Depends(get_auth)]


def require_user(auth: AuthContext) -> User:
    """The logged-in caller, or Quay's 401 for anonymous callers."""
    if auth.user is None:
        raise unauthorized(auth)
    return auth.user


def require_fresh_login(auth: AuthContext, settings: Settings) -> None:
    """Session logins older than FRESH_LOGIN_TIMEOUT must sign in again; tokens are always fresh."""
    user = require_user(auth)
    if user.robot:
        raise unauthorized(auth)
    if auth.kind is AuthKind.OAUTH or user.password_hash is None:
        return
    login_time = auth.session_login_time or 0
    if time.time() - login_time > settings.fresh_login_timeout_s:
        raise fresh_login_required()


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object. A missing body is `{}`; malformed JSON is Werkzeug's 400."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = untrusted_json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(400, BAD_REQUEST_TEXT) from exc
    if value is None:
        raise invalid_request("Missing JSON body")
    if not isinstance(value, dict):
        raise invalid_request(f"{value!r} is not of type 'object'")
    if _contains_nul(value):
        raise invalid_request("Text values must not contain NUL characters.")
    return value


def _contains_nul(value: Any) -> bool:
    """NUL bytes cannot be stored in PostgreSQL text; refuse them up front on every engine."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(item) for item in value)
    return False


JsonBody = Annotated[dict[str, Any], Depends(json_body)]


@dataclass(frozen=True)
class Caller:
    """What a changing endpoint hands its domain function: the unit of work, the settings,
    who calls and from where."""

    db: DbSession
    settings: Settings
    auth: AuthContext
    ip: str | None


def get_caller(request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep) -> Caller:
    return Caller(db, settings, auth, client_ip(request))


CallerDep = Annotated[Caller, Depends(get_caller)]


def validate_body(model: type[Model], raw: dict[str, Any]) -> Model:
    """Validate a JSON object against a request model; errors are ApiError invalid_request."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise invalid_request(pydantic_error_message(model, exc.errors())) from exc


_FALSY = {"false", "False", "FALSE", "0", "null", ""}


def truthy(value: str | None, default: bool) -> bool:
    """Quay's boolean query parameters: anything but false/0/null/empty is true."""
    if value is None:
        return default
    return value not in _FALSY
