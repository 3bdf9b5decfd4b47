"""Opaque `next_page` tokens for list endpoints, shared by the API and the registry.

The token is the list's position encrypted with a key derived from SECRET_KEY, so clients
cannot forge or read it; a token that does not decrypt (tampered, expired, from another
installation) simply means "first page", as in Quay.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from cargohold.config import Settings

TOKEN_TTL_SECONDS = 2 * 24 * 3600
_KEY_CONTEXT = b"cargohold page token"


def _fernet(settings: Settings) -> Fernet:
    digest = hashlib.sha256(_KEY_CONTEXT + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encode_page_token(settings: Settings, position: dict[str, Any]) -> str:
    return _fernet(settings).encrypt(json.dumps(position).encode()).decode()


def decode_page_token(settings: Settings, token: str | None) -> dict[str, Any] | None:
    """The position a token carries, or None for a missing or unusable token."""
    if not token:
        return None
    try:
        raw = _fernet(settings).decrypt(token.encode(), ttl=TOKEN_TTL_SECONDS)
        position = json.loads(raw)
    except (InvalidToken, ValueError):
        return None
    return position if isinstance(position, dict) else None


def start_id(settings: Settings, token: str | None) -> int:
    """For lists paged by ascending id: the first id of the requested page (0 = from the start)."""
    position = decode_page_token(settings, token) or {}
    value = position.get("start_id", 0)
    return value if isinstance(value, int) and value > 0 else 0
