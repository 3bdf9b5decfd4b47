"""The build-trigger webhook receiver (outside /api, errors as `{"error": ...}`)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import PlainTextResponse

from cargohold.api.deps import DbDep, SettingsDep
from cargohold.api.errors import JsonError
from cargohold.api.routing import ApiRouter
from cargohold.auth.credentials import CredentialsError, verify_basic
from cargohold.config import Settings
from cargohold.db.models.builds import BuildTrigger
from cargohold.db.models.registry import RepositoryState
from cargohold.db.session import DbSession
from cargohold.domain import builds as build_rules
from cargohold.domain import permissions, triggers

router = ApiRouter(tags=["webhooks"])


def _error(status: int, message: str) -> JsonError:
    return JsonError(status, {"error": message})


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return username, password


def _may_invoke(db: DbSession, settings: Settings, request: Request, trigger: BuildTrigger) -> bool:
    """The trigger's own webhook secret, or credentials with write access to its repository."""
    credentials = _basic_credentials(request)
    if credentials is None:
        return False
    username, password = credentials
    if username == "$token":
        return triggers.webhook_token_matches(trigger, password)
    try:
        auth = verify_basic(db, settings, username, password)
    except CredentialsError:
        return False
    return permissions.can_write_repository(db, auth, trigger.repository)


async def raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


def _receive(
    trigger_uuid: str, request: Request, body: bytes, db: DbSession, settings: Settings
) -> PlainTextResponse:
    trigger = triggers.find_trigger_by_uuid(db, trigger_uuid)
    if trigger is None:
        raise _error(404, "Not Found")
    if settings.REGISTRY_STATE == "readonly":
        raise _error(503, "System is currently in read-only mode")
    if not _may_invoke(db, settings, request, trigger):
        raise _error(403, "Permission Denied")
    repository = trigger.repository
    if repository.kind != "image":
        raise _error(501, "Build triggers cannot be invoked on application repositories")
    if repository.state != RepositoryState.NORMAL:
        raise _error(503, "Repository is currently in read only or mirror mode")
    config = triggers.config_of(trigger)
    if trigger.service != triggers.CUSTOM_GIT or not config.get("build_source"):
        raise _error(400, "This build trigger is not activated")
    if build_rules.build_from_webhook(db, settings, trigger, body) is None:
        return PlainTextResponse("Okay")
    db.commit()
    return PlainTextResponse("Okay")


@router.post("/webhooks/push/trigger/{trigger_uuid}", include_in_schema=False)
def build_trigger_webhook(
    trigger_uuid: str, request: Request, body: RawBody, db: DbDep, settings: SettingsDep
) -> PlainTextResponse:
    return _receive(trigger_uuid, request, body, db, settings)


@router.post(
    "/webhooks/push/{namespace}/{repository}/trigger/{trigger_uuid}", include_in_schema=False
)
def legacy_build_trigger_webhook(
    namespace: str,
    repository: str,
    trigger_uuid: str,
    request: Request,
    body: RawBody,
    db: DbDep,
    settings: SettingsDep,
) -> PlainTextResponse:
    """The older URL form; the repository in the path is not used, as in Quay."""
    return _receive(trigger_uuid, request, body, db, settings)
