"""Repository notifications (/repository/{repo}/notification/...) and authorized e-mail addresses.

Every operation needs admin rights on the repository; global read-only superusers may read.
Unlike Quay, a notification uuid is looked up within the repository named in the path, so no
caller learns about another repository's notifications.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from cargohold.api.deps import (
    AuthDep,
    Caller,
    CallerDep,
    DbDep,
    JsonBody,
    SettingsDep,
    validate_body,
)
from cargohold.api.errors import NOT_FOUND_TEXT, MessageError, invalid_request, not_found
from cargohold.api.repo_access import require_repository
from cargohold.api.routing import ApiRouter, json_body_schema
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.registry import Repository, Role
from cargohold.db.session import DbSession
from cargohold.domain import repo_notifications as rules

router = ApiRouter(tags=["repositorynotification"])

LIST_PATH = "/api/v1/repository/{repository:repopath}/notification/"
ITEM_PATH = "/api/v1/repository/{repository:repopath}/notification/{uuid}"
EMAIL_PATH = "/api/v1/repository/{repository:repopath}/authorizedemail/{email}"
MAX_EMAIL_LENGTH = 255


class NotificationCreateRequest(BaseModel):
    model_config = ConfigDict(title="NotificationCreateRequest")

    event: StrictStr = Field(max_length=64)
    method: StrictStr = Field(max_length=64)
    config: dict[str, Any]
    eventConfig: dict[str, Any]  # noqa: N815 - Quay's request key
    title: StrictStr | None = Field(default=None, max_length=255)


def _repository(
    db: DbSession, auth: AuthContext, path: str, *, reading: bool = False
) -> Repository:
    return require_repository(db, auth, path, Role.admin, superuser_read=reading)


def _change(call: Caller, path: str, uuid: str, change: Callable[..., None]) -> Response:
    """A change to one of the repository's notifications, by its uuid (admins only)."""
    repo = _repository(call.db, call.auth, path)
    change(call.db, repo, uuid, auth=call.auth, ip=call.ip)
    call.db.commit()
    return Response(status_code=204)


@router.get(LIST_PATH, operation_id="listRepoNotifications")
def list_notifications(repository: str, db: DbDep, auth: AuthDep) -> dict[str, Any]:
    """The repository's notifications."""
    repo = _repository(db, auth, repository, reading=True)
    return {"notifications": [rules.view(n) for n in rules.list_for(db, repo)]}


@router.post(
    LIST_PATH,
    operation_id="createRepoNotification",
    status_code=201,
    openapi_extra=json_body_schema(NotificationCreateRequest),
)
def create_notification(repository: str, call: CallerDep, raw: JsonBody) -> JSONResponse:
    """Create a notification: when `event` happens, deliver through `method`."""
    repo = _repository(call.db, call.auth, repository)
    body = validate_body(NotificationCreateRequest, raw)
    created = rules.create(
        call.db,
        call.settings,
        repo,
        rules.NotificationRequest(
            event=body.event,
            method=body.method,
            config=body.config,
            event_config=body.eventConfig,
            title=body.title,
        ),
        auth=call.auth,
        ip=call.ip,
    )
    call.db.commit()
    return JSONResponse(rules.view(created), status_code=201)


@router.get(ITEM_PATH, operation_id="getRepoNotification")
def get_notification(repository: str, uuid: str, db: DbDep, auth: AuthDep) -> dict[str, Any]:
    repo = _repository(db, auth, repository, reading=True)
    found = rules.find(db, repo, uuid)
    if found is None:
        raise not_found()
    return rules.view(found)


@router.delete(ITEM_PATH, operation_id="deleteRepoNotification", status_code=204)
def delete_notification(repository: str, uuid: str, call: CallerDep) -> Response:
    return _change(call, repository, uuid, rules.delete_notification)


@router.post(ITEM_PATH, operation_id="resetRepositoryNotificationFailures", status_code=204)
def reset_failures(repository: str, uuid: str, call: CallerDep) -> Response:
    """Set the failure count back to 0, so that a disabled notification is delivered again."""
    return _change(call, repository, uuid, rules.reset_failures)


@router.post(f"{ITEM_PATH}/test", operation_id="testRepoNotification")
def test_notification(
    repository: str, uuid: str, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    """Queue one delivery with the event's sample data."""
    repo = _repository(db, auth, repository)
    rules.queue_test(db, settings, repo, uuid)
    db.commit()
    return {}


# --- authorized e-mail addresses (Quay: internal, shown only with FEATURE_MAILING) ------------


def _email_repository(
    db: DbSession, settings: Settings, auth: AuthContext, path: str, *, reading: bool = False
) -> Repository:
    if not settings.FEATURE_MAILING:
        raise MessageError(404, NOT_FOUND_TEXT)
    return _repository(db, auth, path, reading=reading)


def _address(email: str) -> str:
    address = email.strip()
    if not address or len(address) > MAX_EMAIL_LENGTH or "@" not in address or "\n" in address:
        raise invalid_request("Invalid e-mail address")
    return address


@router.get(EMAIL_PATH, operation_id="checkRepoEmailAuthorized")
def check_email(
    repository: str, email: str, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    """Whether `email` may receive this repository's notifications."""
    repo = _email_repository(db, settings, auth, repository, reading=True)
    record = rules.find_authorized_email(db, repo, email)
    if record is None:
        raise MessageError(404, NOT_FOUND_TEXT)
    return rules.authorized_email_view(repo, record)


@router.post(EMAIL_PATH, operation_id="sendAuthorizeRepoEmail")
def authorize_email(
    repository: str, email: str, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    """Mail a confirmation link to `email`; once followed, it may receive notifications."""
    repo = _email_repository(db, settings, auth, repository)
    address = _address(email)
    record = rules.request_email_authorization(db, settings, repo, address)
    db.commit()
    return rules.authorized_email_view(repo, record)


@router.get("/authrepoemail", operation_id="confirmRepoEmail", include_in_schema=False)
def confirm_email(db: DbDep, settings: SettingsDep, code: str = "") -> HTMLResponse:
    """The link mailed by sendAuthorizeRepoEmail."""
    record = rules.confirm_email_authorization(db, code) if code else None
    if record is None:
        raise MessageError(400, "Invalid confirmation code.")
    db.commit()
    return HTMLResponse(
        "<!doctype html><title>E-mail authorized</title><p>Your e-mail address has been "
        "authorized to receive notifications for this repository.</p>"
    )
