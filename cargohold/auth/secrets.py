"""Secret handling: password hashing, token formats and hashing, encryption at rest.

The token formats live here, once: a split token is looked up by its first characters
(stored in the clear) and checked against a hash of the rest, so a stolen table reveals no
usable token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

import bcrypt
from cryptography.fernet import Fernet, InvalidToken

UPPER_ALNUM = string.ascii_uppercase + string.digits
ALNUM = string.ascii_letters + string.digits

# OAuth access tokens and authorization codes: 20 characters to find, 20 to check.
OAUTH_TOKEN_PREFIX_LENGTH = 20
OAUTH_TOKEN_SECRET_LENGTH = 20
# App-specific tokens (`$app` passwords): 60 to find, 60 to check.
APP_TOKEN_PREFIX_LENGTH = 60
APP_TOKEN_SECRET_LENGTH = 60


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


@dataclass(frozen=True)
class SplitToken:
    """A token as stored: the lookup name, and the secret whose hash is kept."""

    name: str
    secret: str

    @property
    def code(self) -> str:
        """What the holder presents."""
        return self.name + self.secret

    @property
    def secret_hash(self) -> str:
        return hash_token(self.secret)


def new_split_token(name_length: int, secret_length: int, alphabet: str = ALNUM) -> SplitToken:
    return SplitToken(random_code(name_length, alphabet), random_code(secret_length, alphabet))


def split_token(code: str, name_length: int) -> SplitToken | None:
    """A presented code cut into name and secret; None when it is too short to hold both."""
    if len(code) <= name_length:
        return None
    return SplitToken(code[:name_length], code[name_length:])


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
