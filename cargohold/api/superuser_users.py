"""Superuser user management: /api/v1/superuser/users/ and /api/v1/superuser/users/{username}."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from cargohold.api.deps import (
    AuthDep,
    DbDep,
    JsonBody,
    SettingsDep,
    client_ip,
    require_fresh_login,
    validate_body,
)
from cargohold.api.errors import invalid_request
from cargohold.api.query import integer, truthy
from cargohold.api.routing import ApiRouter
from cargohold.api.superuser_access import (
    require_superuser,
    require_superuser_feature,
    superuser_reader,
    superuser_writer,
)
from cargohold.api.superuser_views import superuser_user_views
from cargohold.auth.credentials import encrypt_password
from cargohold.domain import accounts, superuser
from cargohold.paging import encode_page_token, start_id

router = ApiRouter(tags=["superuser"])

MAX_PAGE_LIMIT = 100


@router.get("/api/v1/superuser/users/", operation_id="listAllUsers")
def list_all_users(
    request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    """Every person account; `disabled=false` keeps only enabled ones. Pages with `limit`."""
    superuser_reader(settings, auth)
    limit = integer(request, "limit", 0, "Limit on the number of results (int)")
    if limit > MAX_PAGE_LIMIT:
        raise invalid_request("Page limit cannot be above 100")
    include_disabled = truthy(request, "disabled", True)
    paged = limit > 0
    first_id = start_id(settings, request.query_params.get("next_page")) if paged else 0
    users = accounts.list_users(
        db, include_disabled=include_disabled, start_id=first_id, limit=limit + 1 if paged else None
    )
    next_page = None
    if paged and len(users) > limit:
        next_page = encode_page_token(settings, {"start_id": users[limit].id})
        users = users[:limit]
    body: dict[str, Any] = {"users": list(superuser_user_views(db, settings, users).values())}
    if next_page is not None:
        body["next_page"] = next_page
    return body


class NewInstallUser(BaseModel):
    username: StrictStr
    email: StrictStr = Field(default=None)


@router.post("/api/v1/superuser/users/", operation_id="createInstallUser")
def create_install_user(
    request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep, raw: JsonBody
) -> dict[str, Any]:
    """Create a user with a generated password, which the response carries."""
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    body = validate_body(NewInstallUser, raw)
    actor = require_superuser(auth)
    user, password = superuser.create_install_user(
        db,
        settings,
        username=body.username,
        email=body.email,
        actor=actor,
        auth=auth,
        ip=client_ip(request),
    )
    db.commit()
    return {
        "username": user.username,
        "email": body.email,
        "password": password,
        "encrypted_password": encrypt_password(settings, password),
    }


@router.get("/api/v1/superuser/users/{username}", operation_id="getInstallUser")
def get_install_user(
    username: str, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    superuser_reader(settings, auth)
    user = accounts.person_named(db, username)
    return superuser_user_views(db, settings, [user])[user.id]


class InstallUserChanges(BaseModel):
    model_config = ConfigDict(extra="ignore")

    password: StrictStr = Field(default=None)
    email: StrictStr = Field(default=None)
    enabled: StrictBool = Field(default=None)


@router.put("/api/v1/superuser/users/{username}", operation_id="changeInstallUser")
def change_install_user(
    username: str,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    auth: AuthDep,
    raw: JsonBody,
) -> dict[str, Any]:
    """Change a user's password, email or enabled flag. Superusers cannot be changed here."""
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    body = validate_body(InstallUserChanges, raw)
    actor = require_superuser(auth)
    user = accounts.person_named(db, username)
    # Quay answers with the view from before the change, patched with what was asked for.
    view = superuser_user_views(db, settings, [user])[user.id]
    changes = superuser.InstallUserChanges(
        password=body.password, email=body.email, enabled=body.enabled
    )
    superuser.change_install_user(
        db, settings, user, changes, actor=actor, auth=auth, ip=client_ip(request)
    )
    db.commit()
    if body.email is not None:
        view["email"] = body.email
    if body.password is not None:
        view["encrypted_password"] = encrypt_password(settings, body.password)
    return view


@router.delete(
    "/api/v1/superuser/users/{username}", operation_id="deleteInstallUser", status_code=204
)
def delete_install_user(
    username: str, request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> Response:
    """Delete a user at once (even the last admin of an organization); not a superuser."""
    superuser_writer(settings, auth)
    user = accounts.person_named(db, username)
    superuser.delete_install_user(db, settings, user, auth=auth, ip=client_ip(request))
    db.commit()
    return Response(status_code=204)
