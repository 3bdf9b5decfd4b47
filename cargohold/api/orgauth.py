"""Authorizing calls on an organization: the permission is checked before existence (as Quay),
so callers without rights cannot probe which organizations exist."""

from __future__ import annotations

from cargohold.api.errors import not_found, unauthorized
from cargohold.auth.context import AuthContext
from cargohold.db.models.accounts import User
from cargohold.db.session import DbSession
from cargohold.domain.permissions import can_admin_organization
from cargohold.domain.teams import get_organization


def may_administer(session: DbSession, auth: AuthContext, organization: User | None) -> bool:
    if auth.has_superuser_full_access:
        return True
    return organization is not None and can_admin_organization(session, auth, organization)


def organization_for_admin(
    session: DbSession, auth: AuthContext, orgname: str, *, read_only: bool = False
) -> User:
    """The organization, for its admins (and read-only superusers when `read_only`)."""
    organization = get_organization(session, orgname)
    allowed = may_administer(session, auth, organization) or (
        read_only and auth.is_global_readonly_superuser
    )
    if not allowed:
        raise unauthorized(auth)
    if organization is None:
        raise not_found()
    return organization
