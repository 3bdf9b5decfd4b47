"""POST /api/v1/user/convert: a person's account becomes an organization."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, StrictStr

from cargohold.api.deps import (
    AuthDep,
    DbDep,
    JsonBody,
    SettingsDep,
    client_ip,
    require_user,
    validate_body,
)
from cargohold.api.errors import unauthorized
from cargohold.api.routing import ApiRouter
from cargohold.api.sessions import start_login
from cargohold.domain import ownership

router = ApiRouter(tags=["user"])


class ConvertUser(BaseModel):
    model_config = ConfigDict(extra="ignore")

    adminUser: StrictStr  # noqa: N815 - Quay's field name
    adminPassword: StrictStr  # noqa: N815 - Quay's field name
    plan: StrictStr | None = None


@router.post("/api/v1/user/convert", operation_id="convertUserToOrganization")
def convert_user_to_organization(
    request: Request,
    response: Response,
    db: DbDep,
    settings: SettingsDep,
    auth: AuthDep,
    raw: JsonBody,
) -> dict[str, Any]:
    """Turn the caller's account into an organization administered by another person, and
    sign in as that person (the account itself can no longer sign in)."""
    user = require_user(auth)
    if user.robot or not auth.can_admin_self():
        raise unauthorized(auth)
    body = validate_body(ConvertUser, raw)
    admin = ownership.convert_own_account(
        db,
        settings,
        user,
        body.adminUser,
        body.adminPassword,
        auth=auth,
        ip=client_ip(request),
    )
    db.commit()
    start_login(response, settings, admin.uuid, admin.session_token)
    return {"success": True}
