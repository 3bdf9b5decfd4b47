"""Superuser tools: taking ownership of a namespace, the app-token audit and the config dump."""

from __future__ import annotations

import os
from typing import Any

from fastapi import Request

from cargohold.api.deps import AuthDep, DbDep, SettingsDep, client_ip, require_fresh_login
from cargohold.api.errors import invalid_request, not_found, unauthorized
from cargohold.api.query import truthy
from cargohold.api.routing import ApiRouter
from cargohold.api.superuser_access import (
    require_feature,
    require_superuser,
    require_superuser_feature,
    superuser_writer,
)
from cargohold.config_dump import config_dump
from cargohold.db.models.accounts import AppSpecificToken
from cargohold.domain import accounts, app_tokens, ownership, password_recovery
from cargohold.domain.dates import format_date

router = ApiRouter(tags=["superuser"])


@router.post(
    "/api/v1/superusers/users/{username}/sendrecovery", operation_id="sendInstallUserRecoveryEmail"
)
def send_recovery_email(
    username: str, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, str | None]:
    """Mail a person a password-recovery link on their behalf (not to a superuser)."""
    require_superuser_feature(settings)
    require_feature(settings.FEATURE_MAILING)
    require_fresh_login(auth, settings)
    require_superuser(auth)
    user = accounts.get_user(db, username)
    if user is None:
        raise not_found()
    if settings.is_superuser_name(username, user.superuser):
        raise invalid_request("Cannot send a recovery email for a superuser")
    if not user.email:
        raise invalid_request("The user has no e-mail address")
    password_recovery.send_recovery(db, settings, user)
    db.commit()
    return {"email": user.email}


@router.post("/api/v1/superuser/takeownership/{namespace}", operation_id="takeOwnership")
def take_ownership(
    namespace: str, request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, str]:
    """Become an admin of an organization; a person's account becomes an organization."""
    actor = superuser_writer(settings, auth)
    ownership.take_ownership(db, settings, namespace, actor=actor, auth=auth, ip=client_ip(request))
    db.commit()
    return {"namespace": namespace}


def _app_token_view(token: AppSpecificToken) -> dict[str, Any]:
    return {
        "uuid": token.uuid,
        "title": token.title,
        "last_accessed": format_date(token.last_accessed),
        "created": format_date(token.created),
        "expiration": format_date(token.expiration),
    }


@router.get("/api/v1/superuser/apptokens", operation_id="listAllAppTokens")
def list_all_app_tokens(
    request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    """Every user's app-specific tokens (never their codes), for global read-only superusers
    and superusers with full access."""
    require_feature(settings.FEATURE_APP_SPECIFIC_TOKENS)
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    if not (auth.is_global_readonly_superuser or auth.has_superuser_full_access):
        raise unauthorized(auth)
    expiring = truthy(request, "expiring", False)
    tokens = app_tokens.list_all_tokens(db, settings, only_expiring=expiring)
    return {"tokens": [_app_token_view(token) for token in tokens], "only_expiring": expiring}


@router.get("/api/v1/superuser/config", operation_id="getSuperUserConfig")
def dump_config(settings: SettingsDep, auth: AuthDep) -> dict[str, Any]:
    """The running configuration with its secrets masked (FEATURE_SUPERUSER_CONFIGDUMP)."""
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    if not (auth.is_superuser or auth.is_global_readonly_superuser):
        raise unauthorized(auth)
    if not settings.FEATURE_SUPERUSER_CONFIGDUMP:
        raise unauthorized(auth)
    return config_dump(settings, os.environ)
