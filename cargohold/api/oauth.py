"""Quay's OAuth 2 provider: /oauth/authorize, /oauth/authorizeapp, /oauth/access_token, localapp.

The web UI and Ansible's `quay_api_token` obtain API tokens through these pages: the user
(signed in, or presenting Basic credentials) consents to an application's scopes and is
redirected to the application with the token in the URL fragment (`response_type=token`) or
with a one-time code (`response_type=code`, Quay's default) that the application trades at
/oauth/access_token with its client secret. Organization admins may assign a token request
to a user (/oauth/authorize/assignuser); the user approves it with `assignment_uuid`.
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
from starlette.concurrency import run_in_threadpool

from cargohold.api.deps import DbDep, SettingsDep, client_ip, resolve_caller
from cargohold.api.errors import JsonError
from cargohold.api.oauth_views import application_summary, scope_information
from cargohold.api.routing import ApiRouter
from cargohold.api.sessions import load_session, save_session
from cargohold.auth.context import AuthContext, AuthKind
from cargohold.auth.credentials import CredentialsError, verify_user_password
from cargohold.auth.sessions import new_csrf_token
from cargohold.config import Settings
from cargohold.db.models.accounts import OAuthApplication, User
from cargohold.db.session import DbSession
from cargohold.domain import accounts, oauth, oauth_grants
from cargohold.domain.permissions import can_admin_organization
from cargohold.domain.teams import Actor

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


def _caller(request: Request, db: DbSession, settings: Settings) -> tuple[AuthContext, bool]:
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


def _params(source: Any, required: tuple[str, ...] = _REQUIRED) -> dict[str, str]:
    for name in required:
        if not source.get(name):
            raise JsonError(400, {"error": f"Required param: {name}"})
    optional = ("state", "response_type", "assignment_uuid")
    params = {key: str(source.get(key) or "") for key in (*required, *optional)}
    params["response_type"] = params["response_type"] or "code"
    return params


def _check_assignment_params(settings: Settings, params: dict[str, str]) -> None:
    """Assignments exist only with FEATURE_ASSIGN_OAUTH_TOKEN and only for token responses."""
    if not params["assignment_uuid"]:
        return
    if not settings.FEATURE_ASSIGN_OAUTH_TOKEN:
        raise JsonError(400, {"error": "Token assignment is not enabled"})
    if params["response_type"] != "token":
        raise JsonError(400, {"error": "Assignments are only supported for token responses"})


def _application(
    db: DbSession, settings: Settings, auth: AuthContext, params: dict[str, str]
) -> OAuthApplication:
    """The application, if the caller administers its organization or holds an assignment."""
    app = oauth.find_application(db, params["client_id"])
    if app is None:
        raise JsonError(404, {"error": "Unknown application"})
    assert auth.user is not None
    assigned = oauth_grants.find_assignment(db, params["assignment_uuid"], auth.user, app)
    if assigned is None and not can_admin_organization(db, auth, app.organization):
        raise JsonError(403, {"error": "Only administrators of the application's organization"})
    if not oauth.redirect_allowed(settings, app, params["redirect_uri"]):
        raise JsonError(400, {"error": "Invalid redirect_uri"})
    return app


def _with_query(uri: str, query: dict[str, str]) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode(query)}"


def _error_redirect(params: dict[str, str], code: str) -> RedirectResponse:
    query = {"error": code}
    if params.get("state"):
        query["state"] = params["state"]
    return RedirectResponse(_with_query(params["redirect_uri"], query), status_code=302)


def _redirect_query(params: dict[str, str]) -> dict[str, str]:
    query = {"scope": params["scope"]}
    if params.get("state"):
        query["state"] = params["state"]
    return query


def _token_redirect(
    db: DbSession, app: OAuthApplication, auth: AuthContext, params: dict[str, str], scopes
) -> RedirectResponse:
    """Issue the token; an assignment it answers is used up."""
    assert auth.user is not None
    code = oauth_grants.grant_token(
        db, app, auth.user, scopes, assignment_uuid=params["assignment_uuid"]
    )
    db.commit()
    fragment = urlencode(
        {
            "access_token": code,
            "token_type": oauth_grants.TOKEN_TYPE,
            "expires_in": oauth.IMPLICIT_TOKEN_LIFETIME_S,
        }
    )
    location = f"{_with_query(params['redirect_uri'], _redirect_query(params))}#{fragment}"
    return RedirectResponse(location, status_code=302)


def _code_redirect(
    db: DbSession, app: OAuthApplication, auth: AuthContext, params: dict[str, str]
) -> RedirectResponse:
    assert auth.user is not None
    code = oauth_grants.issue_code(
        db, app, auth.user, scope=params["scope"], redirect_uri=params["redirect_uri"]
    )
    db.commit()
    query = {**_redirect_query(params), "code": code}
    return RedirectResponse(_with_query(params["redirect_uri"], query), status_code=302)


def _grant_redirect(
    db: DbSession,
    settings: Settings,
    app: OAuthApplication,
    auth: AuthContext,
    params: dict[str, str],
) -> RedirectResponse:
    """The token or the code, or the error redirect the request has earned."""
    try:
        scopes = oauth.requested_scopes(settings, params["scope"])
    except oauth.OAuthError as exc:
        return _error_redirect(params, exc.code)
    if params["response_type"] == "token":
        return _token_redirect(db, app, auth, params, scopes)
    if params["response_type"] == "code":
        if not oauth_grants.storable_scope(params["scope"]):
            return _error_redirect(params, "invalid_scope")
        return _code_redirect(db, app, auth, params)
    return _error_redirect(params, "unsupported_response_type")


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
        "response_type": params["response_type"],
        "state": params["state"],
        "assignment_uuid": params["assignment_uuid"] or None,
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
        f'<input type="hidden" name="{name}" value="{esc(str(data[key] or ""))}">'
        for name, key in [
            ("client_id", "client_id"),
            ("redirect_uri", "redirect_uri"),
            ("scope", "scope"),
            ("response_type", "response_type"),
            ("state", "state"),
            ("assignment_uuid", "assignment_uuid"),
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
    """Start a grant: answer at once if already granted, else ask for consent."""
    params = _params(request.query_params)
    auth, _ = _caller(request, db, settings)
    _check_assignment_params(settings, params)
    app = _application(db, settings, auth, params)
    try:
        scopes = oauth.requested_scopes(settings, params["scope"])
    except oauth.OAuthError as exc:
        return _error_redirect(params, exc.code)
    if params["response_type"] not in ("token", "code"):
        return _error_redirect(params, "unsupported_response_type")
    assert auth.user is not None
    if oauth.already_granted(db, app, auth.user, scopes):
        return _grant_redirect(db, settings, app, auth, params)
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


def _check_csrf(
    request: Request, settings: Settings, presented: str, *, used_basic: bool, client_id: str
) -> None:
    """Session callers prove the request is theirs; Basic callers of whitelisted clients need not."""
    if used_basic and client_id in settings.DIRECT_OAUTH_CLIENTID_WHITELIST:
        return
    expected = load_session(request, settings).get("csrf")
    presented = presented or request.headers.get("x-csrf-token") or ""
    if not expected or not presented or not hmac.compare_digest(expected, presented):
        raise JsonError(403, {"error": "CSRF token was invalid or missing."})


def _verified_caller(
    request: Request, db: DbSession, settings: Settings, source: Any, client_id: str
) -> AuthContext:
    """The caller of a state-changing page, with the CSRF token `source` carries checked."""
    auth, used_basic = _caller(request, db, settings)
    _check_csrf(
        request,
        settings,
        str(source.get("_csrf_token") or ""),
        used_basic=used_basic,
        client_id=client_id,
    )
    return auth


@router.post("/oauth/authorizeapp", operation_id="oauthAuthorizeApp")
async def authorize_app(request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """The user's consent: issue a token or a code and redirect to the application with it."""
    form = await request.form()
    params = _params(form)
    auth = _verified_caller(request, db, settings, form, params["client_id"])
    _check_assignment_params(settings, params)
    app = _application(db, settings, auth, params)
    return _grant_redirect(db, settings, app, auth, params)


@router.post("/oauth/denyapp", operation_id="oauthDenyApp")
async def deny_app(request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """The user declined: the application is told `access_denied`."""
    form = await request.form()
    params = _params(form)
    auth, _ = _caller(request, db, settings)
    _application(db, settings, auth, params)
    return _error_redirect(params, "access_denied")


def _assignment_target(db: DbSession, settings: Settings, params: dict[str, str]) -> User:
    """The person the token is assigned to, and the request checked as far as it can be now."""
    try:
        oauth.requested_scopes(settings, params["scope"])
    except oauth.OAuthError as exc:
        raise JsonError(400, {"error": "Invalid scope"}) from exc
    if not oauth_grants.storable_scope(params["scope"]):
        raise JsonError(400, {"error": "Invalid scope"})
    if params["response_type"] not in ("token", "code"):
        raise JsonError(400, {"error": "Invalid response_type"})
    user = accounts.get_user(db, params["username"])
    if user is None or not user.enabled:
        raise JsonError(404, {"error": "Unknown user"})
    return user


@router.post("/oauth/authorize/assignuser", operation_id="oauthAssignUser")
def assign_user(request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """An organization admin asks a user to grant the application a token."""
    query = request.query_params
    params = _params(query, (*_REQUIRED, "username"))
    auth = _verified_caller(request, db, settings, query, params["client_id"])
    if not settings.FEATURE_ASSIGN_OAUTH_TOKEN:
        raise JsonError(404, {"error": "Token assignment is not enabled"})
    user = _assignment_target(db, settings, params)
    app = oauth.find_application(db, params["client_id"])
    if app is None:
        raise JsonError(404, {"error": "Unknown application"})
    if not can_admin_organization(db, auth, app.organization):
        raise JsonError(403, {"error": "Only administrators of the application's organization"})
    if not oauth.redirect_allowed(settings, app, params["redirect_uri"]):
        raise JsonError(400, {"error": "Invalid redirect_uri"})
    oauth_grants.assign_token(
        db,
        settings,
        app,
        user,
        Actor(auth, client_ip(request)),
        redirect_uri=params["redirect_uri"],
        scope=params["scope"],
        response_type=params["response_type"],
    )
    db.commit()
    message = "Token assigned successfully"
    if query.get("format", "").lower() == "json":
        return JSONResponse({"message": message})
    return HTMLResponse(f"<!doctype html><html><body><p>{message}</p></body></html>")


_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _client_credentials(request: Request, values: dict[str, str]) -> tuple[str, str]:
    """Clients may send their id and secret in a Basic header instead of the body."""
    basic = _basic_credentials(request)
    client_id, client_secret = values.get("client_id", ""), values.get("client_secret", "")
    if basic is not None:
        client_id = basic[0] or client_id
        client_secret = basic[1] or client_secret
    return client_id, client_secret


def _redeem(db: DbSession, settings: Settings, values: dict[str, str], client: tuple[str, str]):
    try:
        _, token = oauth_grants.redeem_code(
            db,
            settings,
            grant_type=values["grant_type"],
            client_id=client[0],
            client_secret=client[1],
            redirect_uri=values["redirect_uri"],
            code=values["code"],
            scope=values["scope"],
        )
    except oauth.OAuthError as exc:
        # A refused redemption changed nothing; its session closes uncommitted.
        return JSONResponse({"error": exc.code}, status_code=400, headers=_NO_STORE)
    db.commit()
    body = {
        "access_token": token,
        "token_type": oauth_grants.TOKEN_TYPE,
        "expires_in": oauth.IMPLICIT_TOKEN_LIFETIME_S,
        "refresh_token": None,
    }
    return JSONResponse(body, headers=_NO_STORE)


@router.post("/oauth/access_token", operation_id="oauthAccessToken")
async def access_token(request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """The authorization-code grant: a code and the client's secret for an access token."""
    form = await request.form()
    # Query parameters win over the body, as in Quay (Werkzeug's request.values).
    values = {key: str(value) for key, value in form.items()}
    values.update(request.query_params)
    for name in ("grant_type", "client_id", "redirect_uri", "code", "scope"):
        if not values.get(name):
            raise JsonError(400, {"error": f"Required param: {name}"})
    client = _client_credentials(request, values)
    return await run_in_threadpool(_redeem, db, settings, values, client)


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
