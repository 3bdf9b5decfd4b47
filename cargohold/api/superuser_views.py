"""The superuser panel's JSON views of people and organizations."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cargohold.api.quota_views import namespace_quota_fields
from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.session import DbSession
from cargohold.domain import quota as quotas
from cargohold.domain.avatars import avatar


def _quota_fields(db: DbSession, settings: Settings, users: Iterable[User]) -> dict[int, dict]:
    if not quotas.quota_fields_enabled(settings):
        return {}
    return namespace_quota_fields(db, settings, [user.id for user in users])


def superuser_user_views(
    db: DbSession, settings: Settings, users: Iterable[User]
) -> dict[int, dict[str, Any]]:
    """The superuser panel's view of people, by id (quota fields loaded in one batch)."""
    people = list(users)
    quota_fields = _quota_fields(db, settings, people)
    readonly = set(settings.GLOBAL_READONLY_SUPER_USERS)
    return {
        user.id: {
            "kind": "user",
            "name": user.username,
            "username": user.username,
            "email": user.email,
            "verified": user.verified,
            "avatar": avatar(settings, user.username, user.email, "user"),
            "super_user": settings.is_superuser_name(user.username, user.superuser)
            and user.username not in readonly,
            "global_readonly_super_user": user.username in readonly,
            "enabled": user.enabled,
            **quota_fields.get(user.id, {}),
        }
        for user in people
    }


def organization_views(db: DbSession, settings: Settings, orgs: list[User]) -> list[dict[str, Any]]:
    quota_fields = _quota_fields(db, settings, orgs)
    return [
        {
            "name": org.username,
            "email": org.email,
            "avatar": avatar(settings, org.username, org.email, "org"),
            **quota_fields.get(org.id, {}),
        }
        for org in orgs
    ]
