"""GET /confirm?code=...: the link mailed to confirm an address (a web route, not /api/v1)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from cargohold.api.deps import DbDep, SettingsDep, client_ip
from cargohold.api.errors import MessageError
from cargohold.api.routing import ApiRouter
from cargohold.api.sessions import start_login
from cargohold.domain.email_confirmation import confirm
from cargohold.web import index_page

router = ApiRouter(tags=["user"])

INVALID_CODE = "Invalid confirmation code."


@router.get("/confirm", operation_id="confirmEmail")
def confirm_email(request: Request, db: DbDep, settings: SettingsDep, code: str = "") -> Response:
    """Mark the address verified (or switch to the new one) and sign the user in."""
    if not code:
        raise MessageError(400, INVALID_CODE)
    result = confirm(db, settings, code, ip=client_ip(request))
    if result is None:
        # Quay answers an unknown, used or unusable code with its UI page and 200.
        return index_page(settings)
    user, old_email = result
    db.commit()
    response = RedirectResponse("/user/?tab=settings" if old_email is not None else "/", 302)
    start_login(response, settings, user.uuid, user.session_token)
    return response
