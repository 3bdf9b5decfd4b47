"""The signed-in user's notifications (team invitations and the like), as the web UI reads them."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from cargohold.api.deps import AuthDep, DbDep, JsonBody, SettingsDep
from cargohold.api.errors import invalid_request, not_found, unauthorized
from cargohold.api.query import integer
from cargohold.api.routing import ApiRouter
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.models.notifications import UserNotification
from cargohold.domain import notifications
from cargohold.domain.dates import format_date

router = ApiRouter(tags=["user"])

PATH = "/api/v1/user/notifications"
MAX_LIMIT = 100


def _caller(auth: AuthContext) -> User:
    if auth.user is None or auth.user.robot or not auth.can_admin_self():
        raise unauthorized(auth)
    return auth.user


def _view(settings: Settings, notification: UserNotification, target: User) -> dict[str, Any]:
    return {
        "id": notification.uuid,
        "organization": target.username if target.organization else None,
        "kind": notification.kind,
        "created": format_date(notification.created),
        "metadata": notifications.full_metadata(settings, notification),
        "dismissed": notification.dismissed,
    }


@router.get(PATH, operation_id="listUserNotifications")
def list_notifications(
    request: Request, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    user = _caller(auth)
    page = integer(request, "page", 0, "Offset page number. (int)")
    limit = integer(request, "limit", 5, "Limit on the number of results (int)")
    limit = min(max(limit, 1), MAX_LIMIT)
    # Pages count from 1; page 0 is the first page too.
    offset = max(page - 1, 0) * limit
    rows = notifications.list_notifications(db, user, offset=offset, limit=limit + 1)
    return {
        "notifications": [_view(settings, n, target) for n, target in rows[:limit]],
        "additional": len(rows) > limit,
    }


def _found(db, user: User, uuid: str) -> tuple[UserNotification, User]:
    found = notifications.get_notification(db, user, uuid)
    if found is None:
        raise not_found()
    return found


@router.get(PATH + "/{uuid}", operation_id="getUserNotification")
def get_notification(uuid: str, db: DbDep, auth: AuthDep, settings: SettingsDep) -> dict[str, Any]:
    notification, target = _found(db, _caller(auth), uuid)
    return _view(settings, notification, target)


@router.put(PATH + "/{uuid}", operation_id="updateUserNotification")
def update_notification(
    uuid: str, body: JsonBody, db: DbDep, auth: AuthDep, settings: SettingsDep
) -> dict[str, Any]:
    notification, target = _found(db, _caller(auth), uuid)
    dismissed = body.get("dismissed", notification.dismissed)
    if not isinstance(dismissed, bool):
        raise invalid_request(f"{dismissed!r} is not of type 'boolean'")
    notification.dismissed = dismissed
    db.commit()
    return _view(settings, notification, target)
