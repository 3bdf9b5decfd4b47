"""The signed-in user: /api/v1/user/, /api/v1/users/{username} and first-user initialization."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

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
from cargohold.api.errors import (
    NOT_FOUND_TEXT,
    ApiError,
    MessageError,
    unauthorized,
)
from cargohold.api.quota_views import namespace_quota_fields
from cargohold.api.routing import ApiRouter
from cargohold.api.sessions import clear_session, start_login
from cargohold.auth.context import AuthContext, AuthKind, Scope
from cargohold.auth.credentials import context_for, encrypt_password
from cargohold.config import Settings
from cargohold.db.models.accounts import TEAM_ROLE_RANK, TeamRole, User
from cargohold.db.session import DbSession
from cargohold.domain import accounts, quota, user_profile
from cargohold.domain.avatars import avatar, user_avatar

router = ApiRouter(tags=["user"])


def user_view(db: DbSession, settings: Settings, auth: AuthContext, user: User) -> dict[str, Any]:
    """Quay's UserView of `user` as the caller may see it (the full view only for oneself)."""
    view: dict[str, Any] = {
        "anonymous": False,
        "username": user.username,
        "avatar": user_avatar(settings, user),
    }
    is_self = auth.user is not None and auth.user.id == user.id
    is_admin = is_self and auth.can_admin_self()
    if is_admin:
        view.update(
            {
                "can_create_repo": True,
                "is_me": True,
                "verified": user.verified,
                "email": user.email,
                "logins": [],
                "invoice_email": user.invoice_email,
                "invoice_email_address": user.invoice_email_address,
                "preferred_namespace": False,
                "tag_expiration_s": user.tag_expiration_s,
                "prompts": [],
                "company": user.company,
                "family_name": user.family_name,
                "given_name": user.given_name,
                "location": user.location,
                "is_free_account": True,
                "has_password_set": user.password_hash is not None,
            }
        )
    if is_admin and quota.quota_fields_enabled(settings):
        view.update(namespace_quota_fields(db, settings, [user.id])[user.id])
    if is_self and auth.can_read_self():
        view["organizations"] = _organizations(db, settings, auth, user, is_admin)
    if auth.is_superuser:
        view["super_user"] = is_self
    if auth.is_global_readonly_superuser:
        view["global_readonly_super_user"] = is_self
    return view


def _organizations(
    db: DbSession, settings: Settings, auth: AuthContext, user: User, is_admin: bool
) -> list[dict[str, Any]]:
    memberships = accounts.organization_roles(db, user)
    seen = {org.username for org, _ in memberships}
    public = [
        org
        for name in settings.PUBLIC_NAMESPACES
        if name not in seen and (org := accounts.get_organization(db, name)) is not None
    ]
    items: list[tuple[User, TeamRole | None]] = [*memberships, *((org, None) for org in public)]
    result = []
    for org, role in items:
        capped = auth.cap_team_role(role)
        entry: dict[str, Any] = {
            "name": org.username,
            "avatar": avatar(settings, org.username, org.email, "org"),
            "can_create_repo": capped is not None
            and TEAM_ROLE_RANK[capped] >= TEAM_ROLE_RANK[TeamRole.creator],
            "public": org.username in settings.PUBLIC_NAMESPACES,
        }
        if is_admin:
            entry["is_org_admin"] = capped is TeamRole.admin
            entry["preferred_namespace"] = False
        result.append(entry)
    return result


def _require_user_admin(auth: AuthContext) -> User:
    user = require_user(auth)
    if not auth.can_admin_self():
        raise unauthorized(auth)
    return user


def _session_context(settings: Settings, user: User) -> AuthContext:
    return context_for(settings, user, AuthKind.SESSION, {Scope.DIRECT_LOGIN})


@router.get("/api/v1/user/", operation_id="getLoggedInUser")
def get_logged_in_user(db: DbDep, settings: SettingsDep, auth: AuthDep) -> dict[str, Any]:
    """The caller's own user view."""
    if auth.user is None or auth.user.organization or not auth.can_read_self():
        raise ApiError(401, "invalid_token", "Requires authentication", session_required=False)
    return user_view(db, settings, auth, auth.user)


class NewUser(BaseModel):
    username: StrictStr
    password: StrictStr
    email: StrictStr | None = None
    invite_code: StrictStr | None = None
    recaptcha_response: StrictStr | None = None


@router.post("/api/v1/user/", operation_id="createNewUser")
def create_new_user(
    request: Request,
    response: Response,
    db: DbDep,
    settings: SettingsDep,
    auth: AuthDep,
    raw: JsonBody,
) -> Any:
    """Create an account for oneself (FEATURE_USER_CREATION); signs the new user in."""
    if not (settings.FEATURE_USER_CREATION and settings.FEATURE_DIRECT_LOGIN):
        raise MessageError(404, NOT_FOUND_TEXT)
    body = validate_body(NewUser, raw)
    new = accounts.NewAccount(body.username, body.email, body.password)
    ip = client_ip(request)
    user = user_profile.sign_up(db, settings, new, invite_code=body.invite_code, ip=ip)
    db.commit()
    if not user.verified:
        return {"awaiting_verification": True}
    start_login(response, settings, user.uuid, user.session_token)
    return user_view(db, settings, _session_context(settings, user), user)


class UserChanges(BaseModel):
    model_config = ConfigDict(extra="ignore")

    password: StrictStr | None = None
    invoice_email: StrictBool | None = None
    email: StrictStr | None = None
    tag_expiration_s: StrictInt | None = Field(default=None, ge=0)
    username: StrictStr | None = None
    invoice_email_address: StrictStr | None = None
    given_name: StrictStr | None = None
    family_name: StrictStr | None = None
    company: StrictStr | None = None
    location: StrictStr | None = None


_PROFILE_FIELDS = ("given_name", "family_name", "company", "location")


@router.put("/api/v1/user/", operation_id="changeUserDetails")
def change_user_details(
    request: Request,
    response: Response,
    db: DbDep,
    settings: SettingsDep,
    auth: AuthDep,
    raw: JsonBody,
) -> dict[str, Any]:
    """Change the caller's password, email, time-machine window, invoicing, profile or name."""
    user = _require_user_admin(auth)
    require_fresh_login(auth, settings)
    body = validate_body(UserChanges, raw)
    given = body.model_fields_set
    changes = user_profile.DetailChanges(
        password=body.password,
        invoice_email=body.invoice_email,
        email=body.email,
        tag_expiration_s=body.tag_expiration_s,
        username=body.username,
        invoice_email_address=body.invoice_email_address,
        set_invoice_email_address="invoice_email_address" in given,
        profile={name: getattr(body, name) for name in _PROFILE_FIELDS if name in given},
    )
    user_profile.change_details(db, settings, user, changes, auth=auth, ip=client_ip(request))
    db.commit()
    if body.password is not None and auth.kind is AuthKind.SESSION:
        # The password change ended every session, this one included: start a new one.
        start_login(response, settings, user.uuid, user.session_token)
    return user_view(db, settings, auth, user)


@router.delete("/api/v1/user/", operation_id="deleteCurrentUser", status_code=204)
def delete_current_user(
    request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> Response:
    """Delete the caller's account, unless an organization would be left without an admin."""
    user = _require_user_admin(auth)
    require_fresh_login(auth, settings)
    user_profile.delete_own_account(db, user, auth=auth, ip=client_ip(request))
    db.commit()
    response = Response(status_code=204)
    clear_session(response, settings)
    return response


@router.get("/api/v1/users/{username}", operation_id="getUserInformation")
def get_user_information(
    username: str, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    """Public information about a user (everything for oneself)."""
    user = accounts.get_user(db, username)
    if user is None:
        raise MessageError(404, NOT_FOUND_TEXT)
    return user_view(db, settings, auth, user)


class InitialUser(BaseModel):
    username: StrictStr
    password: StrictStr
    email: StrictStr | None = None
    access_token: Any = None


def _initialize_error(message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=400)


@router.post("/api/v1/user/initialize", operation_id="initializeUser")
def initialize_user(
    request: Request, response: Response, db: DbDep, settings: SettingsDep, raw: JsonBody
) -> Any:
    """Create the first user of an empty installation (no CSRF: there is no session yet)."""
    if not settings.FEATURE_USER_INITIALIZE:
        return _initialize_error("Cannot initialize user, FEATURE_USER_INITIALIZE is False")
    if accounts.user_count(db) > 0:
        return _initialize_error("Cannot initialize user in a non-empty database")
    try:
        body = validate_body(InitialUser, raw)
    except ApiError as exc:
        return _initialize_error(f"Failed to initialize user: {exc.detail}")
    new = accounts.NewAccount(body.username, body.email, body.password)
    with_token = bool(body.access_token)
    user, token = user_profile.initialize_first_user(
        db, settings, new, with_token=with_token, ip=client_ip(request)
    )
    result: dict[str, Any] = {
        "username": user.username,
        "email": body.email,
        "encrypted_password": encrypt_password(settings, body.password),
    }
    if token is not None:
        result["access_token"] = token
    db.commit()
    start_login(response, settings, user.uuid, user.session_token)
    return result


class ClientKeyRequest(BaseModel):
    password: StrictStr


@router.post("/api/v1/user/clientkey", operation_id="generateUserClientKey")
def generate_user_client_key(
    request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep, raw: JsonBody
) -> dict[str, str]:
    """An encrypted form of the caller's password, usable as a registry (docker) password."""
    user = _require_user_admin(auth)
    body = validate_body(ClientKeyRequest, raw)
    key = user_profile.client_key(
        db, settings, user, body.password, auth=auth, ip=client_ip(request)
    )
    db.commit()
    return {"key": key}
