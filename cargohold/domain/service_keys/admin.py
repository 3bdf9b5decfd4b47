"""Managing service keys: the superuser operations, the key server's signed requests, rotation.

The key core (generation, kid, instance keys, verification lookups) is the package itself,
`cargohold.domain.service_keys`; this module adds the lifecycle rules around it and writes
their audit entries. Service-key entries belong to the installation, not to a namespace.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, joinedload

from cargohold.config import Settings
from cargohold.db.base import utcnow
from cargohold.db.models.keys import ServiceKey, ServiceKeyApproval
from cargohold.domain import service_keys as core
from cargohold.domain import untrusted_json
from cargohold.domain.audit import log_action
from cargohold.domain.errors import DomainError, Invalid, ModelError, NotFound
from cargohold.domain.teams import Actor

SERVICE_RE = re.compile(r"^[a-z0-9_]+$")
FRIENDLY_NAME_RE = re.compile(r"^[\s a-zA-Z0-9\-_:/]*$")
SUPERUSER_PANEL = "Quay Superuser Panel"
KEY_ROTATION = "Key Rotation"
JWT_LEEWAY_S = 30


class ServiceKeyError(Invalid):
    """A superuser request breaking a service-key rule."""


class ServiceKeyModelError(ModelError):
    """A rule Quay enforces in its data layer (a `{"message": ...}` 400)."""


class KeyServerError(DomainError):
    """A refused key-server request. The key server answers in plain text with its own
    status for each refusal, so the refusal carries that status rather than a kind."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class KeyServerClient:
    """A service calling the key server; it has no account, only an address and an agent."""

    ip: str | None
    user_agent: str | None


def _audit_superuser(session: Session, actor: Actor, kind: str, **metadata: Any) -> None:
    log_action(session, kind, namespace=None, auth=actor.auth, ip=actor.ip, metadata=metadata)


def _audit_key_server(
    session: Session, client: KeyServerClient, kind: str, **metadata: Any
) -> None:
    metadata.update(user_agent=client.user_agent, ip=client.ip)
    log_action(session, kind, namespace=None, ip=client.ip, metadata=metadata)


def _key_summary(key: ServiceKey) -> dict[str, Any]:
    """What most service-key audit entries record about the key."""
    return {
        "kid": key.kid,
        "service": key.service,
        "name": key.name,
        "expiration_date": unix_seconds(key.expiration_date),
    }


# --- lookups ---------------------------------------------------------------------------------


def _stale_before(settings: Settings) -> dt.datetime:
    return utcnow() - dt.timedelta(seconds=settings.EXPIRED_SERVICE_KEY_TTL_SEC)


def _not_stale(settings: Settings):
    return or_(
        ServiceKey.expiration_date.is_(None), ServiceKey.expiration_date >= _stale_before(settings)
    )


def _with_approval():
    return joinedload(ServiceKey.approval).joinedload(ServiceKeyApproval.approver)


def list_keys(session: Session, settings: Settings) -> list[ServiceKey]:
    """Every key except those expired longer than EXPIRED_SERVICE_KEY_TTL_SEC."""
    return list(
        session.scalars(
            select(ServiceKey)
            .options(_with_approval())
            .where(_not_stale(settings))
            .order_by(ServiceKey.id)
        )
    )


def get_key(session: Session, settings: Settings, kid: str) -> ServiceKey | None:
    return session.scalar(
        select(ServiceKey)
        .options(_with_approval())
        .where(ServiceKey.kid == kid, _not_stale(settings))
    )


def require_key(session: Session, settings: Settings, kid: str) -> ServiceKey:
    key = get_key(session, settings, kid)
    if key is None:
        raise NotFound()
    return key


def cleanup_service(session: Session, settings: Settings, service: str) -> None:
    """Drop the service's long-expired keys and its keys left unapproved too long."""
    unapproved_before = utcnow() - dt.timedelta(seconds=settings.UNAPPROVED_SERVICE_KEY_TTL_SEC)
    session.execute(
        delete(ServiceKey)
        .where(
            ServiceKey.service == service,
            or_(
                ServiceKey.expiration_date < _stale_before(settings),
                (ServiceKey.approval_id.is_(None)) & (ServiceKey.created_date < unapproved_before),
            ),
        )
        .execution_options(synchronize_session=False)
    )


def metadata_of(key: ServiceKey) -> dict[str, Any]:
    return json.loads(key.metadata_json or "{}")


def jwk_of(key: ServiceKey) -> dict[str, Any]:
    return json.loads(key.jwk_json)


# --- superuser operations --------------------------------------------------------------------


_BAD_TIMESTAMP = (TypeError, ValueError, OverflowError, OSError)


def expiration_from_unix(value: Any) -> dt.datetime | None:
    """A superuser's expiration in Unix seconds; None for never."""
    if value is None:
        return None
    try:
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    except _BAD_TIMESTAMP as exc:
        raise ServiceKeyError(f"Invalid expiration date: {exc}") from exc


def published_expiration(value: int | None) -> dt.datetime | None:
    """The expiration a service asks the key server for; refused in the key server's way."""
    if value is None:
        return None
    try:
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    except _BAD_TIMESTAMP as exc:
        raise KeyServerError(400, f"Invalid expiration date: {exc}") from exc


def _check_friendly_name(name: str | None) -> None:
    if name is not None and not FRIENDLY_NAME_RE.match(name):
        raise ServiceKeyError(f"Invalid service key friendly name: {name}")


@dataclass
class CreatedKey:
    key: ServiceKey
    private_key: rsa.RSAPrivateKey

    @property
    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    @property
    def private_pem(self) -> str:
        return core.private_key_pem(self.private_key)


def create_by_superuser(
    session: Session,
    settings: Settings,
    *,
    service: str,
    name: str,
    metadata: dict[str, Any],
    notes: str,
    expiration: dt.datetime | None,
    actor: Actor,
) -> CreatedKey:
    """A fresh RSA key pair, registered and approved at once; the private half is not kept."""
    approver = actor.auth.user
    assert approver is not None
    if expiration is not None and expiration <= utcnow():
        raise ServiceKeyError("Expiration date cannot be in the past")
    _check_friendly_name(name)
    if not SERVICE_RE.match(service):
        raise ServiceKeyModelError("")
    cleanup_service(session, settings, service)
    merged = {
        **metadata,
        "created_by": SUPERUSER_PANEL,
        "creator": approver.username,
        "ip": actor.ip,
    }
    private_key = core.generate_private_key()
    key = core.create_service_key(
        session,
        service=service,
        name=name,
        private_key=private_key,
        metadata=merged,
        expiration=expiration,
        approval_type=core.APPROVAL_SUPERUSER,
        approver_id=approver.id,
        notes=notes,
    )
    audited = {
        "kid": key.kid,
        "preshared": True,
        "service": key.service,
        "name": key.name,
        "expiration_date": unix_seconds(key.expiration_date),
        "auto_approved": True,
    }
    _audit_superuser(session, actor, "service_key_create", **audited)
    _audit_superuser(session, actor, "service_key_approve", **audited)
    return CreatedKey(key, private_key)


def change_expiration(
    session: Session,
    key: ServiceKey,
    expiration: dt.datetime | None,
    actor: Actor,
    *,
    logged_name: str,
) -> None:
    """Set a new expiration (None: never expires). The audit entry names the key by
    `logged_name`: Quay records the name the same request is about to give it."""
    if expiration is not None and expiration <= utcnow():
        raise ServiceKeyError("Cannot have an expiration date in the past")
    previous = key.expiration_date
    key.expiration_date = expiration
    _audit_superuser(
        session,
        actor,
        "service_key_extend",
        kid=key.kid,
        service=key.service,
        name=logged_name,
        expiration_date=unix_seconds(expiration),
        old_expiration_date=unix_seconds(previous),
    )


def change_details(
    session: Session,
    key: ServiceKey,
    name: str | None,
    metadata: dict[str, Any] | None,
    actor: Actor,
) -> None:
    """Rename and merge metadata (keys are added or replaced, never removed)."""
    _check_friendly_name(name)
    if name is not None:
        key.name = name
    if metadata is not None:
        key.metadata_json = json.dumps({**metadata_of(key), **metadata})
    _audit_superuser(session, actor, "service_key_modify", **_key_summary(key))


def approve(session: Session, key: ServiceKey, notes: str, actor: Actor) -> bool:
    """Approve an unapproved key; True when this call approved it."""
    if key.approval is not None:
        return False
    approver = actor.auth.user
    assert approver is not None
    key.approval = ServiceKeyApproval(
        approver_id=approver.id, approval_type=core.APPROVAL_SUPERUSER, notes=notes
    )
    session.flush()
    _audit_superuser(session, actor, "service_key_approve", **_key_summary(key))
    return True


def _delete_key(session: Session, settings: Settings, key: ServiceKey) -> None:
    service = key.service
    session.delete(key)
    session.flush()
    cleanup_service(session, settings, service)


def delete_by_superuser(
    session: Session, settings: Settings, key: ServiceKey, actor: Actor
) -> None:
    audited = {
        "kid": key.kid,
        "service": key.service,
        "name": key.name,
        "created_date": unix_seconds(key.created_date),
        "expiration_date": unix_seconds(key.expiration_date),
    }
    _delete_key(session, settings, key)
    _audit_superuser(session, actor, "service_key_delete", **audited)


def unix_seconds(value: dt.datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


# --- the key server ------------------------------------------------------------------------


def alive_approved_jwks(session: Session, service: str) -> list[dict[str, Any]]:
    keys = session.scalars(
        select(ServiceKey)
        .where(
            ServiceKey.service == service,
            ServiceKey.approval_id.is_not(None),
            _alive_now(),
        )
        .order_by(ServiceKey.id)
    )
    return [{**jwk_of(key), "kid": key.kid} for key in keys]


def served_key(session: Session, settings: Settings, kid: str) -> tuple[dict[str, Any], int]:
    """The stored JWK of one key and how long it may be cached; KeyServerError otherwise."""
    key = get_key(session, settings, kid)
    if key is None:
        raise KeyServerError(404, "Not Found")
    if key.approval_id is None:
        raise KeyServerError(409, "Key has not been approved")
    if not core.is_alive(key):
        raise KeyServerError(403, "Key has expired")
    max_age = 86400
    if key.expiration_date is not None:
        remaining = int((key.expiration_date - utcnow()).total_seconds())
        max_age = max(0, min(max_age, remaining))
    return jwk_of(key), max_age


def submitted_jwk(body: bytes) -> dict[str, Any]:
    """The JWK a service publishes, from the request body."""
    try:
        jwk = untrusted_json.loads(body)
    except ValueError as exc:
        raise KeyServerError(400, "Missing or invalid JWK") from exc
    if not isinstance(jwk, dict) or "kty" not in jwk:
        raise KeyServerError(400, "Missing or invalid JWK")
    required = {"RSA": ("n", "e"), "EC": ("x", "y")}.get(jwk["kty"])
    if required is None or any(field not in jwk for field in required):
        raise KeyServerError(400, "Missing or invalid JWK")
    return jwk


def _decode(token: str, jwk: dict[str, Any], service: str, audience: str) -> dict[str, Any]:
    try:
        verifier = jwt.PyJWK(jwk, algorithm="RS256").key
        claims = jwt.decode(
            token,
            verifier,
            algorithms=["RS256"],
            audience=audience,
            issuer=service,
            leeway=JWT_LEEWAY_S,
            options={"require": ["exp", "iat", "nbf", "iss", "aud"]},
        )
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise KeyServerError(400, f"Invalid JWT: {exc}") from exc
    if claims["iat"] > utcnow().timestamp() + JWT_LEEWAY_S:
        raise KeyServerError(400, "Invalid JWT: issued in the future")
    return claims


def _header_kid(token: str) -> str | None:
    try:
        return jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise KeyServerError(400, "Invalid JWT") from exc


@dataclass(frozen=True)
class PublishedKey:
    """A key a service submits to the key server."""

    service: str
    kid: str
    jwk: dict[str, Any]
    expiration: dt.datetime | None
    rotation_duration: int | None


@dataclass
class PublishResult:
    key: ServiceKey
    rotated_from: str | None


def _alive_now():
    return or_(ServiceKey.expiration_date.is_(None), ServiceKey.expiration_date > utcnow())


def _refuse_taken_kid(session: Session, kid: str) -> None:
    if session.scalar(select(ServiceKey.id).where(ServiceKey.kid == kid)) is not None:
        raise KeyServerError(409, "A key with this kid already exists")


def publish(
    session: Session,
    settings: Settings,
    published: PublishedKey,
    *,
    token: str,
    client: KeyServerClient,
) -> PublishResult:
    """A self-signed new key (unapproved), or a rotation signed by an approved key."""
    signer_kid = _header_kid(token)
    if signer_kid is None or signer_kid == published.kid:
        result = PublishResult(_publish_new(session, settings, published, token, client.ip), None)
    else:
        key = _rotate(session, settings, published, signer_kid, token, client.ip)
        result = PublishResult(key, signer_kid)
    audited: dict[str, Any] = {
        "kid": published.kid,
        "service": published.service,
        "name": result.key.name,
        "expiration_date": unix_seconds(result.key.expiration_date),
    }
    if result.rotated_from is None:
        _audit_key_server(session, client, "service_key_create", **audited, preshared=False)
    else:
        _audit_key_server(
            session, client, "service_key_rotate", **audited, signer_kid=result.rotated_from
        )
    return result


def _publish_new(
    session: Session, settings: Settings, published: PublishedKey, token: str, ip: str | None
) -> ServiceKey:
    """A key signed by itself: stored unapproved until a superuser approves it."""
    _decode(token, published.jwk, published.service, settings.server_url)
    if not SERVICE_RE.match(published.service):
        raise KeyServerError(400, "Invalid service name")
    _refuse_taken_kid(session, published.kid)
    cleanup_service(session, settings, published.service)
    key = ServiceKey(
        kid=published.kid,
        service=published.service,
        name="",
        jwk_json=json.dumps(published.jwk),
        metadata_json=json.dumps({"ip": ip}),
        expiration_date=published.expiration,
        rotation_duration=published.rotation_duration,
    )
    session.add(key)
    session.flush()
    return key


def _rotate(
    session: Session,
    settings: Settings,
    published: PublishedKey,
    signer_kid: str,
    token: str,
    ip: str | None,
) -> ServiceKey:
    """A key signed by an approved key of the service replaces it, inheriting its approval."""
    signer = session.scalar(
        select(ServiceKey).where(
            ServiceKey.kid == signer_kid,
            ServiceKey.service == published.service,
            ServiceKey.approval_id.is_not(None),
            _alive_now(),
        )
    )
    if signer is None:
        raise KeyServerError(403, "Signer is not an approved, valid key of this service")
    _decode(token, jwk_of(signer), published.service, settings.server_url)
    _refuse_taken_kid(session, published.kid)
    key = ServiceKey(
        kid=published.kid,
        service=published.service,
        name=signer.name,
        jwk_json=json.dumps(published.jwk),
        metadata_json=json.dumps({**metadata_of(signer), "ip": ip, "created_by": KEY_ROTATION}),
        expiration_date=published.expiration,
        rotation_duration=signer.rotation_duration,
        approval_id=signer.approval_id,
    )
    session.delete(signer)
    session.flush()
    session.add(key)
    session.flush()
    cleanup_service(session, settings, published.service)
    return key


def delete_signed(
    session: Session,
    settings: Settings,
    *,
    service: str,
    kid: str,
    token: str,
    client: KeyServerClient,
) -> None:
    """Delete a key on behalf of itself or of an approved key of the same service."""
    signer_kid = _header_kid(token)
    if signer_kid is None:
        raise KeyServerError(400, "JWT header must name the signing key")
    signer = session.scalar(
        select(ServiceKey).where(
            ServiceKey.kid == signer_kid,
            ServiceKey.service == service,
            _alive_now(),
        )
    )
    if signer is None:
        raise KeyServerError(403, "Unknown signing key")
    if signer_kid != kid and signer.approval_id is None:
        raise KeyServerError(403, "Signer is not approved")
    _decode(token, jwk_of(signer), service, settings.server_url)
    key = session.scalar(select(ServiceKey).where(ServiceKey.kid == kid))
    if key is None:
        raise KeyServerError(404, "Not Found")
    _delete_key(session, settings, key)
    _audit_key_server(
        session,
        client,
        "service_key_delete",
        kid=kid,
        signer_kid=signer_kid,
        service=key.service,
        name=key.name,
    )


# --- instance key rotation -----------------------------------------------------------------


def rotate_instance_key_if_due(session: Session, settings: Settings, horizon_s: float) -> bool:
    """Make a new instance key when no stored one stays usable for signing past `horizon_s`.

    Old keys are left in place: they keep verifying the tokens they signed until they expire,
    and the cleanup removes them once long expired.
    """
    core.lock_instance_keys(session)
    current = core.find_signing_key(session, settings)
    due = current is None or current.usable_until - utcnow().timestamp() < horizon_s
    if due:
        core.create_instance_key(session, settings)
    cleanup_service(session, settings, settings.INSTANCE_SERVICE_KEY_SERVICE)
    return due
