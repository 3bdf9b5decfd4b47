"""How OAuth applications and scopes are shown: the consent page and the user's grants."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cargohold.auth.context import Scope, parse_scopes
from cargohold.config import Settings
from cargohold.db.models.accounts import OAuthApplication
from cargohold.domain.avatars import avatar
from cargohold.domain.oauth import SCOPE_INFO


def application_summary(settings: Settings, app: OAuthApplication) -> dict[str, Any]:
    org = app.organization
    return {
        "name": app.name,
        "description": app.description,
        "url": app.application_uri,
        "avatar": avatar(settings, app.name, app.avatar_email or org.email, "app"),
        "organization": {
            "name": org.username,
            "avatar": avatar(settings, org.username, org.email, "org"),
        },
    }


def scope_information(scopes: Iterable[Scope]) -> list[dict[str, Any]]:
    infos = [SCOPE_INFO[scope] for scope in sorted(scopes) if scope in SCOPE_INFO]
    return [
        {
            "scope": info.scope.value,
            "title": info.title,
            "description": info.description,
            "icon": info.icon,
            "dangerous": info.dangerous,
        }
        for info in infos
    ]


def scope_string_information(scope_string: str) -> list[dict[str, Any]]:
    return scope_information(parse_scopes(scope_string) or ())
