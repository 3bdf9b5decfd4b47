"""Secret handling: password hashing, token generation, hashing and encryption at rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string

import bcrypt
from cryptography.fernet import Fernet, InvalidToken

UPPER_ALNUM = string.ascii_uppercase + string.digits
ALNUM = string.ascii_letters + string.digits


# bcrypt only reads 72 bytes; older libraries (and Quay's hashes) truncate silently, so do we.
BCRYPT_MAX_BYTES = 72


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode()[:BCRYPT_MAX_BYTES], bcrypt.gensalt()).decode()


def verify_password(password: str, password_hash: str | None) -> bool:
    if not password_hash:
        return False
    try:
        return bcrypt.checkpw(password.encode()[:BCRYPT_MAX_BYTES], password_hash.encode())
    except ValueError:
        return False


def random_code(length: int, alphabet: str = UPPER_ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def hash_token(token: str) -> str:
    """Tokens are long and random, so one SHA-256 round is enough to keep them safe at rest."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), token_hash)


class SecretBox:
    """Symmetric encryption for secrets that must be shown again (robot tokens, app tokens)."""

    def __init__(self, database_secret_key: str) -> None:
        key = hashlib.sha256(database_secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, value: str) -> str | None:
        try:
            return self._fernet.decrypt(value.encode()).decode()
        except InvalidToken:
            return None
