"""External sign-in services (GitHub, Google, OIDC) as Quay exposes them to its sign-in page.

cargohold signs people in with its own database only, so no external service is ever
configured: asking for a service's sign-in URL names an unknown service, and an account has
no external login to detach. Quay answers the same with no service in its configuration.
"""

from __future__ import annotations

from typing import Literal

from fastapi import Depends
from pydantic import BaseModel, ConfigDict

from cargohold.api.deps import (
    AuthDep,
    JsonBody,
    SettingsDep,
    get_auth,
    require_user,
    validate_body,
)
from cargohold.api.errors import invalid_request, unauthorized
from cargohold.api.routing import ApiRouter
from cargohold.api.superuser_access import require_feature

router = ApiRouter(tags=["user"])


class GetLogin(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: Literal["login", "attach", "cli"]


# get_auth applies the CSRF check every API write gets, signed in or not.
@router.post(
    "/api/v1/externallogin/{service_id}",
    operation_id="retrieveExternalLoginAuthorizationUrl",
    dependencies=[Depends(get_auth)],
)
def retrieve_external_login_url(service_id: str, raw: JsonBody) -> None:
    """The authorization URL of an external sign-in service; none is configured."""
    validate_body(GetLogin, raw)
    raise invalid_request(f"Unknown external login service: {service_id}")


@router.post("/api/v1/detachexternal/{service_id}", operation_id="detachExternalLogin")
def detach_external_login(service_id: str, settings: SettingsDep, auth: AuthDep) -> dict[str, bool]:
    """Unlink an external login from the caller's account: there is none to unlink."""
    require_feature(settings.FEATURE_DIRECT_LOGIN)
    user = require_user(auth)
    if user.robot or not auth.can_admin_self():
        raise unauthorized(auth)
    return {"success": True}
