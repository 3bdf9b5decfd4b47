"""The signed-in user: /api/v1/user/, /api/v1/users/{username} and first-user initialization."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from sqlalchemy.orm import Session

from cargohold.api.avatar import avatar, user_avatar
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
    data_model_error,
    invalid_request,
    unauthorized,
)
from cargohold.api.quota_views import namespace_quota_fields
from cargohold.api.routing import ApiRouter
from cargohold.api.sessions import clear_session, start_login
from cargohold.auth.context import AuthContext, AuthKind, Scope
from cargohold.auth.credentials import check_password, context_for, encrypt_password
from cargohold.auth.secrets import SecretBox, random_code
from cargohold.config import Settings
from cargohold.db.models.accounts import TEAM_ROLE_RANK, OAuthApplication, TeamRole, User
from cargohold.domain import accounts, quota, teams
from cargohold.domain.access_tokens import issue_access_token
from cargohold.domain.audit import log_action
from cargohold.domain.email_confirmation import send_confirmation

router = ApiRouter(tags=["user"])

INITIALIZE_TOKEN_SCOPES = (
    "org:admin repo:admin repo:create repo:read repo:write super:user user:admin user:read"
)
INITIALIZE_TOKEN_LIFETIME_S = 9000
CLIENT_ID_LENGTH = 20


def user_view(db: Session, settings: Settings, auth: AuthContext, user: User) -> dict[str, Any]:
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
    db: Session, settings: Settings, auth: AuthContext, user: User, is_admin: bool
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
    if settings.FEATURE_INVITE_ONLY_USER_CREATION:
        raise invalid_request("Cannot create non-invited user")
    if accounts.get_user(db, body.username) is not None:
        raise invalid_request("The username already exists")
    if settings.FEATURE_MAILING and not body.email:
        raise invalid_request("Email address is required")
    try:
        user = accounts.create_user(
            db,
            settings,
            username=body.username,
            email=body.email,
            password=body.password,
            verified=not settings.FEATURE_MAILING,
        )
    except accounts.AccountError as exc:
        raise invalid_request(str(exc)) from exc
    log_action(
        db,
        "user_create",
        namespace=user,
        performer=user,
        ip=client_ip(request),
        metadata={"email": body.email, "username": user.username},
    )
    teams.invite_confirms_email(db, body.invite_code, user)
    if not user.verified:
        send_confirmation(db, settings, user)
        db.commit()
        return {"awaiting_verification": True}
    db.commit()
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


_METADATA_FIELDS = ("given_name", "family_name", "company", "location")


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
    ip = client_ip(request)

    def log(kind: str, metadata: dict[str, Any]) -> None:
        log_action(db, kind, namespace=user, auth=auth, ip=ip, metadata=metadata)

    try:
        if body.password is not None:
            accounts.change_password(user, body.password)
            log("account_change_password", {})
        if body.invoice_email is not None:
            user.invoice_email = body.invoice_email
            log("user_change_invoicing", {"invoice_email": body.invoice_email})
        if (
            body.tag_expiration_s is not None
            and settings.FEATURE_CHANGE_TAG_EXPIRATION
            and body.tag_expiration_s != user.tag_expiration_s
        ):
            if body.tag_expiration_s not in settings.tag_expiration_options_s:
                raise data_model_error("Invalid tag expiration option")
            user.tag_expiration_s = body.tag_expiration_s
            log("user_change_tag_expiration", {"tag_expiration": body.tag_expiration_s})
        if "invoice_email_address" in given:
            address = body.invoice_email_address or None
            if address != user.invoice_email_address:
                user.invoice_email_address = address
                log("user_change_invoicing", {"invoice_email_address": address})
        if body.email is not None and body.email != user.email:
            if settings.FEATURE_MAILING:
                # The new address applies once its owner follows the mailed link.
                accounts.validate_email(body.email)
                if accounts.email_in_use(db, body.email, exclude=user):
                    raise accounts.AccountError("E-mail address already used")
                send_confirmation(db, settings, user, new_email=body.email)
            else:
                old_email = accounts.change_email(db, user, body.email)
                log("user_change_email", {"email": body.email, "old_email": old_email})
        if settings.FEATURE_USER_METADATA:
            changed = {name: getattr(body, name) for name in _METADATA_FIELDS if name in given}
            if changed:
                for name, value in changed.items():
                    setattr(user, name, value)
                log("user_change_metadata", changed)
        if (
            body.username is not None
            and body.username != user.username
            and settings.FEATURE_USER_RENAME
        ):
            old_username = accounts.rename_user(db, user, body.username)
            log("user_change_name", {"old_username": old_username})
    except accounts.AccountError as exc:
        db.rollback()
        raise invalid_request(str(exc)) from exc
    except MessageError:
        db.rollback()
        raise
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
    sole = accounts.sole_admin_organizations(db, user)
    if sole:
        raise data_model_error(
            f"Cannot delete {user.username} as you are the only admin for organizations: "
            + ", ".join(sole)
        )
    log_action(
        db,
        "user_delete",
        namespace=user,
        auth=auth,
        ip=client_ip(request),
        metadata={"username": user.username},
    )
    accounts.mark_deleted(db, user)
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
    try:
        user = accounts.create_user(
            db,
            settings,
            username=body.username,
            email=body.email,
            password=body.password,
            verified=True,
        )
    except accounts.AccountError as exc:
        return _initialize_error(f"Failed to initialize user: {exc}")
    log_action(
        db,
        "user_create",
        namespace=user,
        performer=user,
        ip=client_ip(request),
        metadata={"email": body.email, "username": user.username},
    )
    result: dict[str, Any] = {
        "username": user.username,
        "email": body.email,
        "encrypted_password": encrypt_password(settings, body.password),
    }
    if body.access_token:
        result["access_token"] = _initial_access_token(db, settings, user)
    db.commit()
    start_login(response, settings, user.uuid, user.session_token)
    return result


def _initial_access_token(db: Session, settings: Settings, user: User) -> str:
    """Quay's "automation" application owned by the first user, and a short-lived token."""
    client_id = user.username if len(user.username) <= CLIENT_ID_LENGTH else random_code(20)
    application = OAuthApplication(
        organization_id=user.id,
        client_id=client_id,
        client_secret_encrypted=SecretBox(settings.DATABASE_SECRET_KEY).encrypt(random_code(40)),
        name="automation",
        description="Application token generated via /api/v1/user/initialize",
    )
    db.add(application)
    db.flush()
    _, code = issue_access_token(
        db,
        user,
        INITIALIZE_TOKEN_SCOPES,
        application=application,
        expires_in_s=INITIALIZE_TOKEN_LIFETIME_S,
    )
    return code


class ClientKeyRequest(BaseModel):
    password: StrictStr


@router.post("/api/v1/user/clientkey", operation_id="generateUserClientKey")
def generate_user_client_key(
    request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep, raw: JsonBody
) -> dict[str, str]:
    """An encrypted form of the caller's password, usable as a registry (docker) password."""
    user = _require_user_admin(auth)
    body = validate_body(ClientKeyRequest, raw)
    if not check_password(db, settings, user, body.password):
        raise invalid_request("Invalid Username or Password")
    log_action(db, "user_generate_client_key", namespace=user, auth=auth, ip=client_ip(request))
    db.commit()
    return {"key": encrypt_password(settings, body.password)}
