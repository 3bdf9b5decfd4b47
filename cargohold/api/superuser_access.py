"""Access rules shared by every superuser endpoint: feature gating, fresh login, superuser role.

Quay checks, in order: the route exists (feature flags), fresh login, the body schema, then
the permission. Endpoints call these helpers in that order.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException

from cargohold.api.deps import require_fresh_login
from cargohold.api.errors import unauthorized
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import User


def require_feature(enabled: bool) -> None:
    """A route whose feature is off does not exist: the framework's plain 404."""
    if not enabled:
        raise HTTPException(404)


def require_superuser_feature(settings: Settings) -> None:
    require_feature(settings.FEATURE_SUPER_USERS)


def require_superuser(auth: AuthContext) -> User:
    """A regular superuser (write access); read-only superusers are refused."""
    if not auth.is_superuser or auth.user is None:
        raise unauthorized(auth)
    return auth.user


def require_superuser_reader(auth: AuthContext) -> User:
    """A regular or global read-only superuser."""
    if auth.user is None or not (auth.is_superuser or auth.is_global_readonly_superuser):
        raise unauthorized(auth)
    return auth.user


def superuser_reader(settings: Settings, auth: AuthContext) -> User:
    """The whole gate of a read-only superuser endpoint without a body, in Quay's order."""
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    return require_superuser_reader(auth)


def superuser_writer(settings: Settings, auth: AuthContext) -> User:
    """The whole gate of a superuser endpoint that changes something and takes no body."""
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    return require_superuser(auth)
