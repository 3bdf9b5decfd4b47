"""Password recovery: POST /api/v1/recovery mails a link; GET /recovery?code= follows it."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, StrictStr

from cargohold.api.deps import DbDep, JsonBody, SettingsDep, client_ip, get_auth, validate_body
from cargohold.api.errors import MessageError
from cargohold.api.routing import ApiRouter
from cargohold.api.sessions import start_login
from cargohold.api.superuser_access import require_feature
from cargohold.domain import password_recovery, sign_ins

router = ApiRouter(tags=["user"])

INVALID_CODE = "Invalid recovery code: This code is invalid or may have already been used."
# Where the signed-in user lands to choose a new password.
ACCOUNT_PAGE = "/#/account"


class RecoveryRequest(BaseModel):
    email: StrictStr
    recaptcha_response: StrictStr | None = None


def _redact(name: str) -> str:
    """Quay's hint of an organization's name: its ends kept, the middle dotted out."""
    keep = max(len(name) / 3 - 1, 1)
    return "".join(
        char if index < keep or index >= len(name) - keep else "\u2022"
        for index, char in enumerate(name)
    )


# get_auth applies the CSRF check every API write gets, signed in or not.
@router.post(
    "/api/v1/recovery", operation_id="requestRecoveryEmail", dependencies=[Depends(get_auth)]
)
def request_recovery_email(db: DbDep, settings: SettingsDep, raw: JsonBody) -> dict[str, Any]:
    """Mail a recovery link. The answer is the same whether or not a person has the address."""
    require_feature(settings.FEATURE_MAILING)
    body = validate_body(RecoveryRequest, raw)
    outcome = password_recovery.request_recovery(db, settings, body.email)
    db.commit()
    if outcome.person is None and outcome.organizations:
        return {
            "status": "org",
            "orgemail": body.email,
            "orgname": _redact(outcome.organizations[0].username),
        }
    return {"status": "sent"}


@router.get("/recovery", operation_id="confirmRecovery", include_in_schema=False)
def confirm_recovery(
    request: Request, db: DbDep, settings: SettingsDep, code: str = ""
) -> RedirectResponse:
    """Sign the person in with a fresh login, on their account page to set a new password."""
    require_feature(settings.FEATURE_MAILING)
    user = password_recovery.redeem(db, settings, code) if code else None
    if user is None:
        db.commit()
        raise MessageError(400, INVALID_CODE)
    sign_ins.record_login(
        db,
        settings,
        user,
        method="recovery",
        ip=client_ip(request),
        useragent=request.headers.get("user-agent"),
    )
    db.commit()
    response = RedirectResponse(ACCOUNT_PAGE, status_code=302)
    start_login(response, settings, user.uuid, user.session_token)
    return response
