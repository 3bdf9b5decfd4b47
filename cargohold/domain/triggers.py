"""Build triggers: creation, activation (keys, webhook secret), toggling and deletion."""

from __future__ import annotations

import json
import re
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from cargohold.adapters import outbound
from cargohold.auth.context import AuthContext
from cargohold.auth.secrets import SecretBox, hash_token, random_code, token_matches
from cargohold.config import Settings
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import User
from cargohold.db.models.builds import BuildTrigger
from cargohold.db.models.registry import Repository
from cargohold.domain.audit import log_repository_action
from cargohold.domain.errors import Invalid

CUSTOM_GIT = "custom-git"
SCM_SERVICES = {"github": "GITHUB_BUILD", "gitlab": "GITLAB_BUILD", "bitbucket": "BITBUCKET_BUILD"}
SERVICES = frozenset({CUSTOM_GIT, *SCM_SERVICES})
WRITE_TOKEN_LENGTH = 64
_ACTIVE_MARKER = {"github": "hook_id", "gitlab": "hook_id", "bitbucket": "webhook_id"}
_BOOL_KEYS = ("default_tag_from_ref", "latest_for_default_branch")
_STRING_KEYS = ("build_source", "dockerfile_path", "context", "branchtag_regex")


class TriggerError(Invalid):
    """The trigger cannot do what was asked; the message is shown to the client."""


def config_of(trigger: BuildTrigger) -> dict[str, Any]:
    return json.loads(trigger.config_json or "{}")


def is_active(trigger: BuildTrigger) -> bool:
    if trigger.service == CUSTOM_GIT:
        return trigger.public_key is not None
    return _ACTIVE_MARKER.get(trigger.service, "") in config_of(trigger)


def find_trigger(
    session: Session, repository: Repository, trigger_uuid: str
) -> BuildTrigger | None:
    """A trigger by uuid, only if it belongs to `repository` (uuids never cross repositories)."""
    return session.scalar(
        select(BuildTrigger)
        .options(joinedload(BuildTrigger.pull_robot), joinedload(BuildTrigger.connected_user))
        .where(BuildTrigger.uuid == trigger_uuid, BuildTrigger.repository_id == repository.id)
    )


def find_trigger_by_uuid(session: Session, trigger_uuid: str) -> BuildTrigger | None:
    return session.scalar(
        select(BuildTrigger)
        .options(
            joinedload(BuildTrigger.pull_robot),
            joinedload(BuildTrigger.repository).joinedload(Repository.namespace_user),
        )
        .where(BuildTrigger.uuid == trigger_uuid)
    )


def list_triggers(session: Session, repository: Repository) -> list[BuildTrigger]:
    return list(
        session.scalars(
            select(BuildTrigger)
            .options(joinedload(BuildTrigger.pull_robot))
            .where(BuildTrigger.repository_id == repository.id)
            .order_by(BuildTrigger.id)
        )
    )


def create_trigger(
    session: Session, repository: Repository, service: str, connected_user: User
) -> BuildTrigger:
    """A new, inactive trigger; it does nothing until activated with a config."""
    trigger = BuildTrigger(
        service=service, repository_id=repository.id, connected_user_id=connected_user.id
    )
    session.add(trigger)
    session.flush()
    return trigger


def webhook_url(settings: Settings, trigger: BuildTrigger, token: str) -> str:
    return (
        f"{settings.PREFERRED_URL_SCHEME}://$token:{token}@{settings.SERVER_HOSTNAME}"
        f"/webhooks/push/trigger/{trigger.uuid}"
    )


def credentials(settings: Settings, trigger: BuildTrigger) -> list[dict[str, str]]:
    """What an admin needs to wire up the git host: the deploy key and the webhook URL."""
    if trigger.public_key is None or trigger.write_token_encrypted is None:
        return []
    token = SecretBox(settings.DATABASE_SECRET_KEY).decrypt(trigger.write_token_encrypted)
    items = [{"name": "SSH Public Key", "value": trigger.public_key}]
    if token is not None:
        items.append(
            {"name": "Webhook Endpoint URL", "value": webhook_url(settings, trigger, token)}
        )
    return items


def full_config(settings: Settings, trigger: BuildTrigger) -> dict[str, Any]:
    config = config_of(trigger)
    if trigger.service == CUSTOM_GIT and trigger.public_key is not None:
        config["credentials"] = credentials(settings, trigger)
    return config


def private_key(settings: Settings, trigger: BuildTrigger) -> str | None:
    if trigger.private_key_encrypted is None:
        return None
    return SecretBox(settings.DATABASE_SECRET_KEY).decrypt(trigger.private_key_encrypted)


def _generate_ssh_keypair() -> tuple[str, str]:
    """An RSA deploy key: (OpenSSH private key, `ssh-rsa ...` public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public


def validate_config(settings: Settings, config: dict[str, Any]) -> dict[str, Any]:
    """Check a custom-git activation config; returns the config to store."""
    cleaned = {key: value for key, value in config.items() if key != "credentials"}
    for key in _STRING_KEYS:
        if key in cleaned and cleaned[key] is not None and not isinstance(cleaned[key], str):
            raise TriggerError(f"{key} must be a string")
    for key in _BOOL_KEYS:
        if key in cleaned and not isinstance(cleaned[key], bool):
            raise TriggerError(f"{key} must be a boolean")
    templates = cleaned.get("tag_templates")
    if templates is not None and (
        not isinstance(templates, list) or not all(isinstance(t, str) for t in templates)
    ):
        raise TriggerError("tag_templates must be a list of strings")
    if not cleaned.get("build_source"):
        raise TriggerError("Missing build source")
    check_build_source(settings, cleaned["build_source"])
    regex = cleaned.get("branchtag_regex")
    if regex:
        try:
            re.compile(regex)
        except re.error as exc:
            raise TriggerError(f"Invalid branchtag_regex: {exc}") from exc
    return cleaned


def check_build_source(settings: Settings, source: str) -> None:
    """Only remote git sources on allowed hosts; a name that does not resolve yet may wait."""
    try:
        outbound.check_git_source(settings, source)
    except outbound.UnresolvedHost:
        return
    except outbound.OutboundRefused as exc:
        raise TriggerError(f"Invalid build source: {exc}") from exc


def activate(
    session: Session,
    settings: Settings,
    trigger: BuildTrigger,
    repository: Repository,
    config: dict[str, Any],
    pull_robot: User | None,
    *,
    auth: AuthContext,
    ip: str | None,
) -> None:
    """Store the config, make the deploy key and webhook secret, and log it (caller commits)."""
    cleaned = validate_config(settings, config)
    box = SecretBox(settings.DATABASE_SECRET_KEY)
    private, public = _generate_ssh_keypair()
    token = random_code(WRITE_TOKEN_LENGTH)
    trigger.config_json = json.dumps(cleaned)
    trigger.private_key_encrypted = box.encrypt(private)
    trigger.public_key = public
    trigger.write_token_hash = hash_token(token)
    trigger.write_token_encrypted = box.encrypt(token)
    trigger.pull_robot_id = pull_robot.id if pull_robot else None
    trigger.pull_robot = pull_robot
    entry = {
        "repo": repository.name,
        "namespace": repository.namespace_user.username,
        "trigger_id": trigger.uuid,
        "service": trigger.service,
        "pull_robot": pull_robot.username if pull_robot else None,
        "config": full_config(settings, trigger),
    }
    log_repository_action(
        session, "setup_repo_trigger", repository, auth=auth, ip=ip, metadata=entry
    )


def set_enabled(
    session: Session,
    trigger: BuildTrigger,
    repository: Repository,
    enabled: bool,
    *,
    auth: AuthContext,
    ip: str | None,
) -> None:
    trigger.enabled = enabled
    if not enabled:
        trigger.disabled_reason = "user_toggled"
        trigger.disabled_datetime = utcnow()
    entry = {
        "repo": repository.name,
        "trigger_id": trigger.uuid,
        "service": trigger.service,
        "enabled": enabled,
    }
    log_repository_action(
        session, "toggle_repo_trigger", repository, auth=auth, ip=ip, metadata=entry
    )


def delete(
    session: Session,
    trigger: BuildTrigger,
    repository: Repository,
    *,
    auth: AuthContext,
    ip: str | None,
) -> None:
    if is_active(trigger):
        entry = {
            "repo": repository.name,
            "trigger_id": trigger.uuid,
            "service": trigger.service,
        }
        log_repository_action(
            session, "delete_repo_trigger", repository, auth=auth, ip=ip, metadata=entry
        )
    session.delete(trigger)


def webhook_token_matches(trigger: BuildTrigger, token: str) -> bool:
    return trigger.write_token_hash is not None and token_matches(token, trigger.write_token_hash)
