"""The OAuth 2 implicit grant as Quay has it: /oauth/authorize, /oauth/authorizeapp, localapp.

The web UI and Ansible's `quay_api_token` obtain API tokens through these pages: the user
(signed in, or presenting Basic credentials) consents to an application's scopes and is
redirected to the application with the token in the URL fragment.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from cargohold.api.deps import DbDep, SettingsDep, resolve_caller
from cargohold.api.errors import JsonError
from cargohold.api.oauth_views import application_summary, scope_information
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext, AuthKind
from cargohold.auth.credentials import CredentialsError, verify_user_password
from cargohold.auth.sessions import load_session, new_csrf_token, save_session
from cargohold.config import Settings
from cargohold.db.models.accounts import OAuthApplication
from cargohold.domain import oauth
from cargohold.domain.permissions import can_admin_organization

router = ApiRouter(tags=["oauth"])

_REQUIRED = ("client_id", "redirect_uri", "scope")


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def _caller(request: Request, db: Session, settings: Settings) -> tuple[AuthContext, bool]:
    """The signed-in or Basic-authenticated person, and whether Basic was used."""
    basic = _basic_credentials(request)
    if basic is not None:
        try:
            return verify_user_password(db, settings, *basic), True
        except CredentialsError as exc:
            raise JsonError(401, {"error": str(exc)}) from exc
    auth = resolve_caller(request, db, settings)
    if auth.kind is not AuthKind.SESSION:
        raise JsonError(401, {"error": "Requires authentication"})
    return auth, False


def _params(source: Any) -> dict[str, str]:
    for name in _REQUIRED:
        if not source.get(name):
            raise JsonError(400, {"error": f"Required param: {name}"})
    return {key: str(source.get(key) or "") for key in (*_REQUIRED, "state", "response_type")}


def _application(
    db: Session, settings: Settings, auth: AuthContext, params: dict[str, str]
) -> OAuthApplication:
    app = oauth.find_application(db, params["client_id"])
    if app is None:
        raise JsonError(404, {"error": "Unknown application"})
    if not can_admin_organization(db, auth, app.organization):
        raise JsonError(403, {"error": "Only administrators of the application's organization"})
    if not oauth.redirect_allowed(settings, app, params["redirect_uri"]):
        raise JsonError(400, {"error": "Invalid redirect_uri"})
    return app


def _error_redirect(params: dict[str, str], code: str) -> RedirectResponse:
    query = {"error": code}
    if params.get("state"):
        query["state"] = params["state"]
    return RedirectResponse(f"{params['redirect_uri']}?{urlencode(query)}", status_code=302)


def _token_redirect(
    db: Session, app: OAuthApplication, auth: AuthContext, params: dict[str, str], scopes
) -> RedirectResponse:
    assert auth.user is not None
    _, code = oauth.issue_access_token(db, app, auth.user, scopes)
    db.commit()
    query = {"scope": params["scope"]}
    if params.get("state"):
        query["state"] = params["state"]
    fragment = urlencode(
        {
            "access_token": code,
            "token_type": "Bearer",
            "expires_in": oauth.IMPLICIT_TOKEN_LIFETIME_S,
        }
    )
    location = f"{params['redirect_uri']}?{urlencode(query)}#{fragment}"
    return RedirectResponse(location, status_code=302)


def _csrf_token(request: Request, settings: Settings) -> tuple[str, dict[str, Any] | None]:
    """The session's CSRF token; with no session yet, a new one and the session to save."""
    session_data = load_session(request, settings)
    token = session_data.get("csrf")
    if token:
        return token, None
    token = new_csrf_token()
    return token, {**session_data, "csrf": token}


def _consent_data(
    settings: Settings, app: OAuthApplication, params: dict[str, str], scopes, csrf: str
) -> dict[str, Any]:
    return {
        "application": application_summary(settings, app),
        "client_id": app.client_id,
        "redirect_uri": params["redirect_uri"],
        "scope": params["scope"],
        "response_type": params["response_type"] or "token",
        "state": params["state"],
        "csrf_token_val": csrf,
        "scopes": scope_information(scopes),
        "has_dangerous_scopes": any(oauth.SCOPE_INFO[scope].dangerous for scope in scopes),
    }


def _consent_page(data: dict[str, Any]) -> str:
    esc = html.escape
    items = "".join(
        f"<li><strong>{esc(s['title'])}</strong>: {esc(s['description'])}</li>"
        for s in data["scopes"]
    )
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{esc(str(data[key]))}">'
        for name, key in [
            ("client_id", "client_id"),
            ("redirect_uri", "redirect_uri"),
            ("scope", "scope"),
            ("response_type", "response_type"),
            ("state", "state"),
            ("_csrf_token", "csrf_token_val"),
        ]
    )
    app = data["application"]
    return (
        "<!doctype html><html><head><title>Authorize application</title></head><body>"
        f"<h1>{esc(app['name'])}</h1><p>{esc(app['organization']['name'])} asks to:</p>"
        f"<ul>{items}</ul>"
        f'<form method="post" action="/oauth/authorizeapp">{hidden}'
        '<button type="submit">Authorize application</button></form></body></html>'
    )


@router.get("/oauth/authorize", operation_id="oauthAuthorize")
def authorize(request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """Start the implicit grant: issue at once if already granted, else ask for consent."""
    params = _params(request.query_params)
    auth, _ = _caller(request, db, settings)
    app = _application(db, settings, auth, params)
    try:
        scopes = oauth.requested_scopes(settings, params["scope"])
    except oauth.OAuthError as exc:
        return _error_redirect(params, exc.code)
    if params["response_type"] not in ("", "token"):
        return _error_redirect(params, "unsupported_response_type")
    assert auth.user is not None
    if oauth.already_granted(db, app, auth.user, scopes):
        return _token_redirect(db, app, auth, params, scopes)
    csrf, new_session = _csrf_token(request, settings)
    data = _consent_data(settings, app, params, scopes, csrf)
    response: Response
    if request.query_params.get("format") == "json":
        response = JSONResponse(data)
    else:
        response = HTMLResponse(_consent_page(data))
    if new_session is not None:
        save_session(response, settings, new_session)
    return response


@router.post("/oauth/authorizeapp", operation_id="oauthAuthorizeApp")
async def authorize_app(request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """The user's consent: issue a token and redirect to the application with it."""
    form = await request.form()
    params = _params(form)
    auth, used_basic = _caller(request, db, settings)
    whitelisted = used_basic and params["client_id"] in settings.DIRECT_OAUTH_CLIENTID_WHITELIST
    if not whitelisted:
        expected = load_session(request, settings).get("csrf")
        presented = str(form.get("_csrf_token") or request.headers.get("x-csrf-token") or "")
        if not expected or not presented or not hmac.compare_digest(expected, presented):
            raise JsonError(403, {"error": "CSRF token was invalid or missing."})
    app = _application(db, settings, auth, params)
    try:
        scopes = oauth.requested_scopes(settings, params["scope"])
    except oauth.OAuthError as exc:
        return _error_redirect(params, exc.code)
    if params["response_type"] not in ("", "token"):
        return _error_redirect(params, "unsupported_response_type")
    return _token_redirect(db, app, auth, params, scopes)


@router.post("/oauth/denyapp", operation_id="oauthDenyApp")
async def deny_app(request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """The user declined: the application is told `access_denied`."""
    form = await request.form()
    params = _params(form)
    auth, _ = _caller(request, db, settings)
    _application(db, settings, auth, params)
    return _error_redirect(params, "access_denied")


_LOCAL_APP_PAGE = """<!doctype html>
<html><head><title>Access token</title></head><body>
<h1>Your access token</h1>
<p>Copy this token now; it is not shown again.</p>
<pre id="token"></pre>
<script>
const params = new URLSearchParams(window.location.hash.slice(1));
document.getElementById("token").textContent = params.get("access_token") || "";
</script>
</body></html>
"""


@router.get("/oauth/localapp", operation_id="oauthLocalApp")
def local_app() -> HTMLResponse:
    """Shows a token issued to the local redirect target so it can be copied."""
    return HTMLResponse(_LOCAL_APP_PAGE)
