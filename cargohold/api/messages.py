"""Global messages (Quay's globalmessages.py): banners shown to every visitor of the UI."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response

from cargohold.api.deps import AuthDep, DbDep, JsonBody, SettingsDep, require_fresh_login
from cargohold.api.errors import MessageError, invalid_request, unauthorized
from cargohold.api.routing import ApiRouter
from cargohold.api.superuser_access import require_superuser_feature
from cargohold.auth.context import AuthContext, Scope
from cargohold.db.models.messages import MEDIA_TYPES, SEVERITIES
from cargohold.domain import messages

router = ApiRouter(tags=["messages"])

# Werkzeug's text for abort(403), which Quay's message endpoints answer to non-superusers.
FORBIDDEN_TEXT = (
    "You don't have the permission to access the requested resource. It is either "
    "read-protected or not readable by the server."
)
_REQUIRED_FIELDS = ("content", "media_type", "severity")
_ENUMS = {"media_type": MEDIA_TYPES, "severity": SEVERITIES}


def _quoted(value: Any) -> str:
    """A JSON value as Python's repr shows it in jsonschema messages ('x', 1, None)."""
    if value is None or isinstance(value, str | int | float | bool):
        return repr(value)
    return json.dumps(value)


def _parse_message(body: dict[str, Any]) -> messages.NewMessage:
    """Quay's CreateMessage schema, with its jsonschema wording for the first problem found."""
    if "message" not in body:
        raise invalid_request("'message' is a required property")
    item = body["message"]
    if not isinstance(item, dict):
        raise invalid_request(f"{_quoted(item)} is not of type 'object'")
    for field in _REQUIRED_FIELDS:
        if field not in item:
            raise invalid_request(f"{field!r} is a required property")
    for field in _REQUIRED_FIELDS:
        if not isinstance(item[field], str):
            raise invalid_request(f"{_quoted(item[field])} is not of type 'string'")
    for field, allowed in _ENUMS.items():
        if item[field] not in allowed:
            raise invalid_request(f"{item[field]!r} is not one of {list(allowed)!r}")
    return messages.NewMessage(item["content"], item["media_type"], item["severity"])


def _require_superuser_role(auth: AuthContext) -> None:
    """Quay checks the super:user scope first (ApiError), then the role (a bare 403)."""
    if not auth.has_scope(Scope.SUPERUSER):
        raise unauthorized(auth)
    if not auth.is_superuser:
        raise MessageError(403, FORBIDDEN_TEXT)


@router.get("/api/v1/messages", operation_id="getGlobalMessages")
def get_messages(db: DbDep, auth: AuthDep) -> dict[str, Any]:
    return {"messages": [messages.message_view(m) for m in messages.list_messages(db)]}


@router.post("/api/v1/messages", operation_id="createGlobalMessage")
def create_message(body: JsonBody, db: DbDep, auth: AuthDep, settings: SettingsDep) -> Response:
    require_fresh_login(auth, settings)
    new = _parse_message(body)
    if not auth.has_scope(Scope.SUPERUSER):
        raise unauthorized(auth)
    require_superuser_feature(settings)
    _require_superuser_role(auth)
    messages.create_message(db, new)
    db.commit()
    return Response(status_code=201)


@router.delete("/api/v1/message/{message_uuid}", operation_id="deleteGlobalMessage")
def delete_message(message_uuid: str, db: DbDep, auth: AuthDep, settings: SettingsDep) -> Response:
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    _require_superuser_role(auth)
    messages.delete_message(db, message_uuid)
    db.commit()
    return Response(status_code=204)
