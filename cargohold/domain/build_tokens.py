"""Registry tokens for the build worker: push and pull rights on one repository, briefly."""

from __future__ import annotations

import time
import uuid

import jwt

from cargohold.config import Settings
from cargohold.domain.service_keys import TOKEN_LIFETIME_S, KeyRing


def push_token(settings: Settings, keyring: KeyRing, repository: str, on_behalf_of: str) -> str:
    """A registry JWT, signed with the instance key, allowing push and pull on `repository`.

    `on_behalf_of` names the account the build runs for (who started it, or who set up its
    trigger); the token's rights come from the build, not from that account.
    """
    key = keyring.signing_key()
    now = int(time.time())
    claims = {
        "iss": settings.INSTANCE_SERVICE_KEY_SERVICE,
        "aud": settings.SERVER_HOSTNAME,
        "nbf": now,
        "iat": now,
        "exp": now + TOKEN_LIFETIME_S,
        "jti": uuid.uuid4().hex,
        "sub": on_behalf_of,
        "access": [{"type": "repository", "name": repository, "actions": ["push", "pull"]}],
        "context": {
            "version": 2,
            "kind": "build_worker",
            "entity_kind": "build_worker",
            "user": on_behalf_of,
        },
    }
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})
