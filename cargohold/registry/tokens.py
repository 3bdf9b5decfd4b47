"""Registry bearer tokens: what /v2/auth grants, and checking the JWTs /v2 requests present.

Tokens are RS256 JWTs signed by the instance service key (header `kid`), carrying Quay's
claims: iss, aud, sub, iat, nbf, exp, an `access` list and a `context` describing the
caller. /v2 endpoints trust the grants in a valid token without asking the database again.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt

from cargohold.auth.context import AuthContext, AuthKind
from cargohold.config import Settings
from cargohold.domain.registry_grants import ACTION_ORDER, ScopeRequest
from cargohold.domain.service_keys import TOKEN_LIFETIME_S, KeyRing

ANONYMOUS_SUBJECT = "(anonymous)"
LEEWAY_S = 30
_SCOPE_RE = re.compile(
    r"^repository:((?:[^/:]+(?::[0-9]+)?/)?[.a-zA-Z0-9_-]+(?:/[.a-zA-Z0-9_-]+)*):([a-z*,]*)$"
)
_VERIFIED_CACHE_SIZE = 4096


@dataclass
class Identity:
    """Who presented a registry token, and what it grants per repository ("ns/name")."""

    subject: str
    username: str | None
    kind: str
    grants: dict[str, frozenset[str]] = field(default_factory=dict)
    expires_at: float = 0.0

    @property
    def is_anonymous(self) -> bool:
        return self.username is None

    def may(self, repository: str, action: str) -> bool:
        """pull needs any grant; push needs push or *; * needs *."""
        granted = self.grants.get(repository)
        if not granted:
            return False
        if action == "pull":
            return True
        if action == "push":
            return "push" in granted or "*" in granted
        return "*" in granted


ANONYMOUS = Identity(ANONYMOUS_SUBJECT, None, "anonymous")


def parse_scope(scope: str, server_hostname: str) -> ScopeRequest | None:
    """`repository:[host/]ns/name:actions`; None when it cannot be decoded."""
    match = _SCOPE_RE.match(scope)
    if match is None:
        return None
    raw_name, actions = match.group(1), match.group(2)
    path = raw_name
    prefix = server_hostname + "/"
    if path.startswith(prefix):
        path = path[len(prefix) :]
    namespace, _, name = path.partition("/")
    if not name:
        return None
    wanted = tuple(a for a in actions.split(",") if a)
    if any(a not in ACTION_ORDER for a in wanted):
        return None
    return ScopeRequest(raw_name, namespace, name, wanted)


def _context(auth: AuthContext) -> dict[str, Any]:
    user = auth.user
    if user is None:
        return {"version": 2, "entity_kind": "anonymous", "kind": "anonymous"}
    if auth.kind is AuthKind.ROBOT:
        kind, reference, legacy = "robot", user.username, "user"
    elif auth.kind is AuthKind.OAUTH:
        token = auth.oauth_token
        kind, reference, legacy = "oauthtoken", token.uuid if token else None, "oauth"
    elif auth.kind is AuthKind.APP_TOKEN:
        kind, reference, legacy = "appspecifictoken", None, "user"
    else:
        kind, reference, legacy = "user", user.uuid, "user"
    context: dict[str, Any] = {
        "version": 2,
        "entity_kind": kind,
        "entity_reference": reference,
        "kind": legacy,
        "user": user.username,
        "com.apostille.roots": {},
        "com.apostille.root": "$disabled",
    }
    if auth.kind is AuthKind.OAUTH and auth.oauth_token is not None:
        context["oauth"] = auth.oauth_token.uuid
    return context


def issue_token(
    keys: KeyRing,
    settings: Settings,
    auth: AuthContext,
    audience: str,
    access: list[dict[str, Any]],
) -> str:
    signing = keys.signing_key()
    now = int(time.time())
    claims = {
        "iss": settings.INSTANCE_SERVICE_KEY_SERVICE,
        "aud": audience,
        "nbf": now,
        "iat": now,
        "exp": now + TOKEN_LIFETIME_S,
        "sub": auth.user.username if auth.user is not None else ANONYMOUS_SUBJECT,
        "access": access,
        "context": _context(auth),
    }
    return jwt.encode(claims, signing.private_key, "RS256", {"kid": signing.kid})


class TokenError(Exception):
    """A presented bearer token is not acceptable; the message is safe to show."""


class TokenVerifier:
    """Checks registry JWTs; verified tokens are remembered until they expire."""

    def __init__(self, keys: KeyRing, settings: Settings) -> None:
        self._keys = keys
        self._settings = settings
        self._cache: dict[str, Identity] = {}
        self._lock = threading.Lock()

    def verify_cached(self, token: str) -> Identity | None:
        """A token verified before and not yet expired (no database access)."""
        cached = self._cache.get(token)
        if cached is not None and cached.expires_at > time.time():
            return cached
        return None

    def verify(self, token: str) -> Identity:
        cached = self.verify_cached(token)
        if cached is not None:
            return cached
        identity = self._decode(token)
        with self._lock:
            if len(self._cache) >= _VERIFIED_CACHE_SIZE:
                self._cache.clear()
            self._cache[token] = identity
        return identity

    def _decode(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("Invalid bearer token format") from exc
        kid = header.get("kid")
        if header.get("alg") != "RS256" or not isinstance(kid, str):
            raise TokenError("Invalid bearer token format")
        public = self._keys.public_key(kid)
        if public is None:
            raise TokenError("Unknown signing key")
        try:
            claims = jwt.decode(
                token,
                public.key,
                algorithms=["RS256"],
                audience=self._settings.SERVER_HOSTNAME,
                issuer=self._settings.INSTANCE_SERVICE_KEY_SERVICE,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "nbf", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(f"Invalid bearer token: {exc}") from exc
        if claims["exp"] - claims["iat"] > self._settings.REGISTRY_JWT_AUTH_MAX_FRESH_S:
            raise TokenError("Token was signed for more than the allowed lifetime")
        if claims["iat"] > time.time() + LEEWAY_S:
            raise TokenError("Token was issued in the future")
        grants: dict[str, frozenset[str]] = {}
        access = claims.get("access", [])
        if not isinstance(access, list):
            raise TokenError("Token has an invalid access list")
        prefix = self._settings.SERVER_HOSTNAME + "/"
        for entry in access:
            if (
                not isinstance(entry, dict)
                or entry.get("type") != "repository"
                or not isinstance(entry.get("name"), str)
                or not isinstance(entry.get("actions"), list)
                or any(a not in ACTION_ORDER for a in entry["actions"])
            ):
                raise TokenError("Token has an invalid access list")
            name = entry["name"]
            if name.startswith(prefix):
                name = name[len(prefix) :]
            grants[name] = grants.get(name, frozenset()) | frozenset(entry["actions"])
        context = claims.get("context") or {}
        username = context.get("user") if isinstance(context, dict) else None
        kind = context.get("entity_kind", "anonymous") if isinstance(context, dict) else "anonymous"
        return Identity(
            subject=claims["sub"],
            username=username if isinstance(username, str) else None,
            kind=kind,
            grants=grants,
            expires_at=float(claims["exp"]) + LEEWAY_S,
        )
