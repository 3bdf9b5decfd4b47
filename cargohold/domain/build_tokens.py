"""Registry tokens for the build worker: push and pull rights on one repository, briefly."""

from __future__ import annotations

import time
import uuid

import jwt

from cargohold.config import Settings
from cargohold.domain.service_keys import TOKEN_LIFETIME_S, KeyRing

BUILD_TOKEN_SUBJECT = "(build-worker)"


def push_token(settings: Settings, keyring: KeyRing, repository: str) -> str:
    """A registry JWT, signed with the instance key, allowing push and pull on `repository`."""
    key = keyring.signing_key()
    now = int(time.time())
    claims = {
        "iss": settings.INSTANCE_SERVICE_KEY_SERVICE,
        "aud": settings.SERVER_HOSTNAME,
        "nbf": now,
        "iat": now,
        "exp": now + TOKEN_LIFETIME_S,
        "jti": uuid.uuid4().hex,
        "sub": BUILD_TOKEN_SUBJECT,
        "access": [{"type": "repository", "name": repository, "actions": ["push", "pull"]}],
        "context": {"version": 2, "kind": "build_worker", "entity_kind": "none"},
    }
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})
