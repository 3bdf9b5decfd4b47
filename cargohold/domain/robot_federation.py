"""Robot OIDC federation: outside identities (issuer + subject) that may act as a robot.

A CI system holding an OIDC token from a configured issuer trades it for a short-lived robot
token instead of keeping the robot's static secret. The token must be signed by a key the
issuer publishes, name a configured issuer and subject, be unexpired, and be meant for us:
its audience must be one the entry lists, or this registry's hostname when none is listed
(Quay skips the audience check then; a token minted for another service must not open ours).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from cargohold.adapters import outbound
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.models.accounts import RobotAccountToken, User
from cargohold.domain.audit import log_action
from cargohold.domain.errors import Forbidden, Invalid
from cargohold.domain.oidc_keys import IssuerKeyError, IssuerKeys
from cargohold.domain.robots import NOT_FOUND_MESSAGE, Robot

MISSING_FIELDS = "Missing one or more required fields (issuer, subject)"
ALLOWED_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
CLOCK_SKEW_S = 30
MAX_ENTRIES = 50
MAX_ISSUER_LENGTH = 2048
MAX_SUBJECT_LENGTH = 1024
MAX_AUDIENCES = 10
MAX_AUDIENCE_LENGTH = 1024


class FederationConfigError(Invalid):
    """A federation setting is not acceptable; the message is Quay's where Quay has one."""


class FederationError(Forbidden):
    """A federated token was refused; the message is safe to show to its bearer."""


def _text(value: Any, limit: int, field: str) -> str:
    if not isinstance(value, str):
        raise FederationConfigError(f"{json.dumps(value)[:100]} is not of type 'string'")
    if "\x00" in value:
        raise FederationConfigError("Text values must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise FederationConfigError(f"The {field} is not valid Unicode text") from exc
    if len(value) > limit:
        raise FederationConfigError(f"The {field} is longer than {limit} characters")
    return value


def _audiences(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise FederationConfigError(f"{json.dumps(value)[:100]} is not of type 'array'")
    if len(value) > MAX_AUDIENCES:
        raise FederationConfigError(f"At most {MAX_AUDIENCES} audiences are allowed")
    audiences = [_text(item, MAX_AUDIENCE_LENGTH, "audience") for item in value]
    if any(not audience for audience in audiences):
        raise FederationConfigError("An audience must not be empty")
    return audiences


def _shown(value: Any) -> str:
    """A JSON value as jsonschema's messages show it: Python's repr for scalars."""
    if value is None or isinstance(value, str | int | float | bool):
        return repr(value)[:100]
    return json.dumps(value)[:100]


def _entry(settings: Settings, item: Any) -> dict[str, Any]:
    if not item:
        raise FederationConfigError(MISSING_FIELDS)
    if not isinstance(item, dict):
        raise FederationConfigError(f"{_shown(item)} is not of type 'object'")
    for field in ("issuer", "subject"):
        if field not in item:
            raise FederationConfigError(f"'{field}' is a required property")
    issuer = _text(item["issuer"], MAX_ISSUER_LENGTH, "issuer")
    subject = _text(item["subject"], MAX_SUBJECT_LENGTH, "subject")
    if not issuer or not subject:
        raise FederationConfigError(MISSING_FIELDS)
    if not issuer.startswith(("http://", "https://")):
        raise FederationConfigError("Issuer must be a URL (http:// or https://)")
    try:
        outbound.check_url(settings, issuer)
    except outbound.UnresolvedHost:
        pass  # checked again, by address, whenever a token from it is traded
    except outbound.OutboundRefused as exc:
        raise FederationConfigError(str(exc)) from exc
    entry: dict[str, Any] = {"issuer": issuer, "subject": subject}
    if item.get("audiences"):
        entry["audiences"] = _audiences(item["audiences"])
    return entry


def parse_config(settings: Settings, raw: Any) -> list[dict[str, Any]]:
    """The entries of a POSTed federation config, validated; unknown keys are dropped."""
    if not isinstance(raw, list):
        raise FederationConfigError(f"{json.dumps(raw)[:100]} is not of type 'array'")
    if len(raw) > MAX_ENTRIES:
        raise FederationConfigError(f"At most {MAX_ENTRIES} federation entries are allowed")
    config: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for item in raw:
        entry = _entry(settings, item)
        key = (entry["issuer"], entry["subject"])
        if key in seen:
            raise FederationConfigError("Duplicate federation config entry")
        seen.add(key)
        config.append(entry)
    return config


def _stored(record: RobotAccountToken) -> list[dict[str, Any]]:
    try:
        value = json.loads(record.federation_config or "[]")
    except ValueError:
        return []
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def get_config(robot: Robot) -> list[dict[str, Any]]:
    return _stored(robot.record)


def save_config(
    session: Session,
    namespace: User,
    robot: Robot,
    config: list[dict[str, Any]],
    *,
    auth: AuthContext,
    ip: str | None,
) -> None:
    """Replace the robot's federation entries; an empty list removes federation."""
    robot.record.federation_config = json.dumps(config)
    kind, metadata = "delete_robot_federation", {"robot": robot.short_name}
    if config:
        kind, metadata = "create_robot_federation", {"config": config, **metadata}
    log_action(session, kind, namespace=namespace, auth=auth, ip=ip, metadata=metadata)


@dataclass(frozen=True)
class Exchange:
    """A federated token that was accepted: who presented it, and as which robot."""

    robot: User
    issuer: str
    subject: str


def _find_robot(session: Session, robot_name: str) -> tuple[User, User, RobotAccountToken]:
    """The robot's owner, the robot and its token record."""
    row = session.execute(
        select(User, RobotAccountToken)
        .join(RobotAccountToken, RobotAccountToken.robot_id == User.id)
        .where(User.username == robot_name, User.robot.is_(True), User.deleted.is_(False))
    ).first()
    if row is None:
        raise FederationError(NOT_FOUND_MESSAGE)
    owner = session.scalar(select(User).where(User.username == robot_name.split("+", 1)[0]))
    if owner is None or not owner.enabled or not row[0].enabled:
        raise FederationError("This user has been disabled. Please contact your administrator.")
    return owner, row[0], row[1]


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise FederationError(f"Invalid token: {exc}") from exc
    return header, claims


def exchange(
    session: Session,
    settings: Settings,
    issuer_keys: IssuerKeys,
    robot_name: str,
    token: str,
    *,
    ip: str | None,
) -> Exchange:
    """Check an outside OIDC token against the robot's federation entries; an accepted one is
    audited in the robot owner's log."""
    owner, robot, record = _find_robot(session, robot_name)
    config = _stored(record)
    if not config:
        raise FederationError("Robot does not have federated login configured")
    header, unverified = _unverified(token)
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise FederationError("Token does not contain issuer")
    entries = [entry for entry in config if entry.get("issuer") == issuer]
    if not entries:
        raise FederationError(f"issuer {issuer} not configured for this robot")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise FederationError("Invalid token: Missing `kid` header")
    try:
        key = issuer_keys.key(settings, issuer, kid)
    except IssuerKeyError as exc:
        raise FederationError(f"Invalid token: {exc}") from exc
    audiences = sorted(
        {audience for entry in entries for audience in entry.get("audiences") or []}
    ) or [settings.SERVER_HOSTNAME]
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=ALLOWED_ALGORITHMS,
            issuer=issuer,
            audience=audiences,
            leeway=CLOCK_SKEW_S,
            options={"require": ["iat", "exp", "sub", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise FederationError(f"Invalid token: {exc}") from exc
    subject = claims["sub"]
    if not any(entry.get("subject") == subject for entry in entries):
        raise FederationError("Token does not match robot")
    log_action(
        session,
        "federated_robot_token_exchange",
        namespace=owner,
        performer=robot,
        ip=ip,
        metadata={"subject": subject, "issuer": issuer, "robot": robot_name.split("+", 1)[1]},
    )
    return Exchange(robot, issuer, subject)
