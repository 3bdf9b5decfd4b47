"""Service keys: the instance key that signs registry tokens, and public-key lookup by kid.

The instance key is an RSA-2048 key of service INSTANCE_SERVICE_KEY_SERVICE ("quay") whose
private half is kept in the database, encrypted with DATABASE_SECRET_KEY, so that every process
sharing the database signs with a key every other process can verify. A key is used for signing
only while it will outlive the tokens it signs; after that a fresh one is made. Lookups are
cached per process for a short time, so rotated or deleted keys take effect within a minute.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from cargohold.auth.secrets import SecretBox
from cargohold.config import Settings
from cargohold.db.base import begin_write, transaction, utcnow
from cargohold.db.models.keys import ServiceKey, ServiceKeyApproval

APPROVAL_AUTOMATIC = "ServiceKeyApprovalType.AUTOMATIC"
APPROVAL_SUPERUSER = "ServiceKeyApprovalType.SUPERUSER"
APPROVAL_KEY_ROTATION = "ServiceKeyApprovalType.KEY_ROTATION"
CLI_METADATA = {"created_by": "CLI tool"}
# Registry tokens live an hour; a signing key must stay valid at least that long plus slack.
TOKEN_LIFETIME_S = 3600
SIGNING_MARGIN_S = TOKEN_LIFETIME_S + 300
PUBLIC_KEY_CACHE_S = 60
# Any fixed number: the PostgreSQL advisory lock held while deciding to make an instance key.
_INSTANCE_KEY_LOCK = 0x6B65_7973


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    usable_until: float


@dataclass(frozen=True)
class PublicKey:
    kid: str
    key: rsa.RSAPublicKey
    expires_at: float | None
    cached_at: float


def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(public_key: rsa.RSAPublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of an RSA JWK: the kid Quay gives its keys."""
    canonical = json.dumps(
        {"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def private_key_pem(private_key: rsa.RSAPrivateKey) -> str:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def instance_key_name(settings: Settings) -> str:
    """The instance "audience": scheme://host with an explicit port, as Quay names its keys."""
    host = settings.SERVER_HOSTNAME
    if ":" not in host:
        host = f"{host}:{443 if settings.PREFERRED_URL_SCHEME == 'https' else 80}"
    return f"{settings.PREFERRED_URL_SCHEME}://{host}"


def is_alive(key: ServiceKey, now: dt.datetime | None = None) -> bool:
    return key.expiration_date is None or key.expiration_date > (now or utcnow())


def create_service_key(
    session: Session,
    *,
    service: str,
    name: str | None,
    private_key: rsa.RSAPrivateKey,
    metadata: dict[str, Any],
    expiration: dt.datetime | None,
    approval_type: str | None,
    approver_id: int | None = None,
    notes: str = "",
    encrypted_private_key: str | None = None,
) -> ServiceKey:
    """Register a key (approved when `approval_type` is given); the caller commits."""
    jwk = public_jwk(private_key.public_key())
    kid = jwk_thumbprint(jwk)
    approval = None
    if approval_type is not None:
        approval = ServiceKeyApproval(
            approver_id=approver_id, approval_type=approval_type, notes=notes
        )
        session.add(approval)
    key = ServiceKey(
        kid=kid,
        service=service,
        name=name,
        jwk_json=json.dumps({**jwk, "kid": kid}),
        metadata_json=json.dumps(metadata),
        expiration_date=expiration,
        approval=approval,
        private_key_encrypted=encrypted_private_key,
    )
    session.add(key)
    session.flush()
    return key


def create_instance_key(session: Session, settings: Settings) -> tuple[ServiceKey, SigningKey]:
    """A new instance key with automatic approval; its private half is stored encrypted."""
    private_key = generate_private_key()
    lifetime_s = settings.INSTANCE_SERVICE_KEY_EXPIRATION * 60
    expiration = utcnow() + dt.timedelta(seconds=lifetime_s)
    box = SecretBox(settings.DATABASE_SECRET_KEY)
    key = create_service_key(
        session,
        service=settings.INSTANCE_SERVICE_KEY_SERVICE,
        name=instance_key_name(settings),
        private_key=private_key,
        metadata=dict(CLI_METADATA),
        expiration=expiration,
        approval_type=APPROVAL_AUTOMATIC,
        encrypted_private_key=box.encrypt(private_key_pem(private_key)),
    )
    return key, _signing_key(key, private_key)


def _signing_key(key: ServiceKey, private_key: rsa.RSAPrivateKey) -> SigningKey:
    if key.expiration_date is None:
        usable_until = float("inf")
    else:
        usable_until = key.expiration_date.timestamp() - SIGNING_MARGIN_S
    return SigningKey(key.kid, private_key, usable_until)


def _approved_alive_keys(service: str, now: dt.datetime):
    return (
        select(ServiceKey)
        .join(ServiceKeyApproval, ServiceKey.approval_id == ServiceKeyApproval.id)
        .where(
            ServiceKey.service == service,
            or_(ServiceKey.expiration_date.is_(None), ServiceKey.expiration_date > now),
        )
    )


def lock_instance_keys(session: Session) -> None:
    """Serialise, across processes and replicas, the look-then-create of an instance key.

    Without it two processes that both find no usable key each make one, and the spare key
    outlives the one rotation later ages, so rotation skips a turn.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INSTANCE_KEY_LOCK})
    else:
        begin_write(session)


def find_signing_key(session: Session, settings: Settings) -> SigningKey | None:
    """The stored instance key that stays valid longest, if it outlives a token's lifetime."""
    now = utcnow()
    box = SecretBox(settings.DATABASE_SECRET_KEY)
    candidates = session.scalars(
        _approved_alive_keys(settings.INSTANCE_SERVICE_KEY_SERVICE, now).where(
            ServiceKey.private_key_encrypted.is_not(None)
        )
    ).all()
    best: SigningKey | None = None
    for key in candidates:
        pem = box.decrypt(key.private_key_encrypted or "")
        if pem is None:
            continue
        private_key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(private_key, rsa.RSAPrivateKey):
            continue
        candidate = _signing_key(key, private_key)
        if candidate.usable_until > time.time() and (
            best is None or candidate.usable_until > best.usable_until
        ):
            best = candidate
    return best


def load_public_key(session: Session, settings: Settings, kid: str) -> PublicKey | None:
    """The public half of an approved, alive key of the instance service."""
    key = session.scalar(
        _approved_alive_keys(settings.INSTANCE_SERVICE_KEY_SERVICE, utcnow()).where(
            ServiceKey.kid == kid
        )
    )
    if key is None:
        return None
    public_key = RSAAlgorithm.from_jwk(key.jwk_json)
    if not isinstance(public_key, rsa.RSAPublicKey):
        return None
    expires_at = key.expiration_date.timestamp() if key.expiration_date else None
    return PublicKey(kid, public_key, expires_at, time.monotonic())


class KeyRing:
    """Per-process cache of the signing key and of verification keys by kid."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._lock = threading.Lock()
        self._signing: SigningKey | None = None
        self._public: dict[str, PublicKey] = {}

    def signing_key(self) -> SigningKey:
        current = self._signing
        if current is not None and current.usable_until > time.time():
            return current
        with self._lock:
            current = self._signing
            if current is not None and current.usable_until > time.time():
                return current
            with transaction(self._session_factory) as session:
                lock_instance_keys(session)
                current = find_signing_key(session, self._settings)
                if current is None:
                    _, current = create_instance_key(session, self._settings)
            self._signing = current
            self._public.pop(current.kid, None)
            return current

    def public_key(self, kid: str) -> PublicKey | None:
        cached = self._public.get(kid)
        if (
            cached is not None
            and time.monotonic() - cached.cached_at < PUBLIC_KEY_CACHE_S
            and (cached.expires_at is None or cached.expires_at > time.time())
        ):
            return cached
        with self._session_factory() as session:
            found = load_public_key(session, self._settings, kid)
        if found is None:
            self._public.pop(kid, None)
        else:
            self._public[kid] = found
        return found

    def clear(self) -> None:
        with self._lock:
            self._signing = None
            self._public.clear()
