"""Who is calling and with which scopes: the identity every permission check starts from."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from cargohold.db.models.accounts import TEAM_ROLE_RANK, OAuthAccessToken, TeamRole, User
from cargohold.db.models.registry import ROLE_RANK, Role


class Scope(enum.StrEnum):
    REPO_READ = "repo:read"
    REPO_WRITE = "repo:write"
    REPO_ADMIN = "repo:admin"
    REPO_CREATE = "repo:create"
    USER_READ = "user:read"
    USER_ADMIN = "user:admin"
    ORG_ADMIN = "org:admin"
    SUPERUSER = "super:user"
    DIRECT_LOGIN = "direct_user_login"


GRANTABLE_SCOPES = [s for s in Scope if s is not Scope.DIRECT_LOGIN]

# The most a scope lets a caller do, per kind of role; the caller's real role is capped by it.
_REPO_CAP = {
    Scope.REPO_READ: Role.read,
    Scope.REPO_WRITE: Role.write,
    Scope.REPO_ADMIN: Role.admin,
    Scope.DIRECT_LOGIN: Role.admin,
}
_TEAM_CAP = {
    Scope.REPO_CREATE: TeamRole.creator,
    Scope.ORG_ADMIN: TeamRole.admin,
    Scope.DIRECT_LOGIN: TeamRole.admin,
}
_USER_CAP = {Scope.USER_READ: "read", Scope.USER_ADMIN: "admin", Scope.DIRECT_LOGIN: "admin"}


def parse_scopes(scope_string: str) -> frozenset[Scope] | None:
    """Space- or comma-separated scopes; any empty or unknown item invalidates the string."""
    items = scope_string.replace(",", " ").split(" ") if scope_string else []
    if not items:
        return None
    parsed: set[Scope] = set()
    for item in items:
        try:
            scope = Scope(item)
        except ValueError:
            return None
        if scope is Scope.DIRECT_LOGIN:
            return None
        parsed.add(scope)
    return frozenset(parsed)


class AuthKind(enum.StrEnum):
    ANONYMOUS = "anonymous"
    SESSION = "session"
    OAUTH = "oauth"
    BASIC = "basic"
    ROBOT = "robot"
    APP_TOKEN = "app_token"


@dataclass
class AuthContext:
    """The authenticated caller. Anonymous callers have `user is None`."""

    user: User | None = None
    kind: AuthKind = AuthKind.ANONYMOUS
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    oauth_token: OAuthAccessToken | None = None
    session_login_time: float | None = None
    superuser_names: frozenset[str] = field(default_factory=frozenset)
    readonly_superuser_names: frozenset[str] = field(default_factory=frozenset)
    superusers_full_access: bool = False

    @property
    def is_anonymous(self) -> bool:
        return self.user is None

    @property
    def is_robot(self) -> bool:
        return self.user is not None and self.user.robot

    @property
    def _may_use_superuser_powers(self) -> bool:
        return Scope.DIRECT_LOGIN in self.scopes or Scope.SUPERUSER in self.scopes

    def has_scope(self, scope: Scope) -> bool:
        """Session logins hold every scope; tokens hold the ones they were granted."""
        return Scope.DIRECT_LOGIN in self.scopes or scope in self.scopes

    @property
    def is_superuser(self) -> bool:
        """Full superuser powers; a name in both lists is read-only."""
        return (
            self.user is not None
            and not self.user.robot
            and self.user.username in self.superuser_names
            and self.user.username not in self.readonly_superuser_names
            and self._may_use_superuser_powers
        )

    @property
    def is_global_readonly_superuser(self) -> bool:
        """Read-only superusers read everything whatever their token's scopes (Quay's rule)."""
        return (
            self.user is not None
            and not self.user.robot
            and self.user.username in self.readonly_superuser_names
        )

    @property
    def has_superuser_full_access(self) -> bool:
        return self.is_superuser and self.superusers_full_access

    def _highest_cap(self, caps: dict[Scope, Any], rank: dict[Any, int]) -> Any:
        """The highest role any of the token's scopes allows, by `rank`; None if none does."""
        allowed = [caps[scope] for scope in self.scopes if scope in caps]
        return max(allowed, key=rank.__getitem__, default=None)

    def repo_role_cap(self) -> Role | None:
        return self._highest_cap(_REPO_CAP, ROLE_RANK)

    def team_role_cap(self) -> TeamRole | None:
        return self._highest_cap(_TEAM_CAP, TEAM_ROLE_RANK)

    def user_role_cap(self) -> str | None:
        caps = {_USER_CAP[s] for s in self.scopes if s in _USER_CAP}
        if "admin" in caps:
            return "admin"
        return "read" if caps else None

    def cap_repo_role(self, role: Role | None) -> Role | None:
        cap = self.repo_role_cap()
        if role is None or cap is None:
            return None
        return role if ROLE_RANK[role] <= ROLE_RANK[cap] else cap

    def cap_team_role(self, role: TeamRole | None) -> TeamRole | None:
        cap = self.team_role_cap()
        if role is None or cap is None:
            return None
        return role if TEAM_ROLE_RANK[role] <= TEAM_ROLE_RANK[cap] else cap

    def can_read_self(self) -> bool:
        return self.user is not None and self.user_role_cap() is not None

    def can_admin_self(self) -> bool:
        return self.user is not None and self.user_role_cap() == "admin"
