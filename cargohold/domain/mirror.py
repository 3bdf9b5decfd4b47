"""Repository mirroring: configuration rules, the sync schedule and claiming due mirrors.

The sync itself (skopeo) lives in cargohold.domain.mirror_sync; this module only touches the
database. Claims and releases compare `sync_transaction_id`, so any number of workers may
run against the same database without two of them syncing one mirror.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from cargohold.adapters import outbound
from cargohold.auth.context import AuthContext
from cargohold.auth.secrets import SecretBox
from cargohold.config import Settings
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import User
from cargohold.db.models.mirror import RepoMirrorConfig, SyncStatus
from cargohold.db.models.registry import (
    ROLE_RANK,
    Repository,
    RepositoryPermission,
    RepositoryState,
    Role,
)
from cargohold.domain.audit import log_action
from cargohold.domain.errors import Conflict, Invalid, ModelError

DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_RETRIES = 3
ARCHITECTURES = {"amd64", "arm64", "ppc64le", "s390x"}
UNDECRYPTABLE = "(invalid. please re-enter)"
_FORBIDDEN_IN_REFERENCE = re.compile(r"[?#\\%]")
_HOST = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")


class MirrorError(Invalid):
    """A refused mirror request, answered as Quay's invalid_request."""


class MirrorRobotRefused(ModelError):
    """The sync robot named cannot be used; Quay answers with a bare message."""


class MirrorSettingRefused(Invalid):
    """A setting Quay checks in its endpoint code, answered with a `{"detail": ...}` body."""


class MirrorConfigExists(Conflict):
    """The repository is mirrored already (a 409 with a `{"detail": ...}` body)."""


@dataclass
class MirrorInput:
    """The body of POST/PUT .../mirror after schema validation; `present` lists the keys sent."""

    present: set[str] = field(default_factory=set)
    is_enabled: bool | None = None
    external_reference: str | None = None
    external_registry_username: str | None = None
    external_registry_password: str | None = None
    external_registry_config: dict[str, Any] | None = None
    sync_interval: int | None = None
    sync_start_date: str | None = None
    robot_username: str | None = None
    root_rule: list[str] | None = None
    skopeo_timeout_interval: int | None = None
    architecture_filter: list[str] | None = None


def _box(settings: Settings) -> SecretBox:
    return SecretBox(settings.DATABASE_SECRET_KEY)


def registry_host(reference: str) -> str:
    return reference.split("/", 1)[0]


def validate_reference(settings: Settings, reference: str, *, resolved: bool = False) -> None:
    """`registry[:port]/path` with no scheme, tag or odd characters, not aimed inward.

    With `resolved`, a host name that has no address now is refused too: the sync checks
    right before skopeo runs, since skopeo resolves the name itself.
    """
    _check_reference_syntax(reference)
    name, port = _split_host(registry_host(reference))
    try:
        outbound.check_host(settings, name, port or 443)
    except outbound.UnresolvedHost:
        if resolved:
            raise MirrorError("The provided registry location could not be resolved") from None
    except outbound.OutboundRefused:
        raise MirrorError("The provided registry location is not allowed") from None


def _check_reference_syntax(reference: str) -> None:
    """The shape of `registry[:port]/path`, refused with Quay's message for each fault."""
    if not reference.strip():
        raise MirrorError("External registry reference is required")
    if any(char.isspace() for char in reference):
        raise MirrorError("External registry reference must not include whitespace")
    if "://" in reference:
        raise MirrorError("External registry reference must not include a URL scheme")
    if _FORBIDDEN_IN_REFERENCE.search(reference):
        raise MirrorError("External registry reference contains an invalid character")
    host, _, path = reference.partition("/")
    if not path or not host or any(not part for part in path.split("/")):
        raise MirrorError("External registry reference must include a repository path")
    if host.endswith(":"):
        raise MirrorError("External registry reference contains an invalid registry port")
    if not _HOST.match(host):
        raise MirrorError("External registry reference contains an invalid registry authority")
    _, port = _split_host(host)
    if port is not None and not 0 < port < 65536:
        raise MirrorError("External registry reference contains an invalid registry port")


def validate_proxies(
    settings: Settings, registry_config: dict[str, Any] | None, *, resolved: bool = False
) -> None:
    """A sync's proxies are outbound targets like its registry."""
    proxy = (registry_config or {}).get("proxy")
    if not isinstance(proxy, dict):
        return
    for key in ("http_proxy", "https_proxy"):
        value = proxy.get(key)
        if not value:
            continue
        try:
            outbound.check_proxy(settings, str(value))
        except outbound.UnresolvedHost:
            if resolved:
                raise MirrorError(f"The {key} could not be resolved") from None
        except outbound.OutboundRefused:
            raise MirrorError(f"The provided {key} is not allowed") from None


def _split_host(host: str) -> tuple[str, int | None]:
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") else None
    name, _, port = host.partition(":")
    return name, int(port) if port else None


def parse_start_date(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.strptime(value, DATE_FORMAT)
    except (TypeError, ValueError) as exc:
        raise MirrorSettingRefused("Incorrect DateTime format for sync_start_date.") from exc
    return parsed.replace(tzinfo=dt.UTC)


def _check_rule(rule_value: list[str]) -> None:
    if not rule_value or any(not glob.strip() for glob in rule_value):
        raise MirrorError(
            "validation failed: rule_value for TAG_GLOB_CSV must be a list with at least one rule"
        )


def _check_architectures(settings: Settings, architectures: list[str] | None) -> None:
    if not architectures:
        return
    if not settings.FEATURE_SPARSE_INDEX:
        raise MirrorSettingRefused(
            "Architecture filtering requires FEATURE_SPARSE_INDEX to be enabled."
        )
    unknown = sorted(set(architectures) - ARCHITECTURES)
    if unknown:
        raise MirrorSettingRefused(f"Invalid architectures: {', '.join(unknown)}")


def _find_robot(session: Session, repository: Repository, robot_username: str) -> User:
    robot = session.scalar(
        select(User).where(
            User.username == robot_username, User.robot.is_(True), User.deleted.is_(False)
        )
    )
    if robot is None:
        raise MirrorRobotRefused("Could not find robot with specified username")
    if robot_username.split("+", 1)[0] != repository.namespace_user.username:
        raise MirrorRobotRefused("Invalid robot")
    return robot


def _grant_write(session: Session, repository: Repository, robot: User) -> None:
    """The mirror robot pushes the copies, so it needs at least write."""
    grant = session.scalar(
        select(RepositoryPermission).where(
            RepositoryPermission.repository_id == repository.id,
            RepositoryPermission.user_id == robot.id,
        )
    )
    if grant is None:
        session.add(
            RepositoryPermission(repository_id=repository.id, user_id=robot.id, role=Role.write)
        )
    elif ROLE_RANK[grant.role] < ROLE_RANK[Role.write]:
        grant.role = Role.write


def get_config(session: Session, repository: Repository) -> RepoMirrorConfig | None:
    return session.scalar(
        select(RepoMirrorConfig).where(RepoMirrorConfig.repository_id == repository.id)
    )


def _audit(
    session: Session,
    repository: Repository,
    auth: AuthContext | None,
    ip: str | None,
    changed: str,
    to: Any,
) -> None:
    log_action(
        session,
        "repo_mirror_config_changed",
        namespace=repository.namespace_user,
        repository=repository,
        auth=auth,
        ip=ip,
        metadata={
            "changed": changed,
            "to": to,
            "repo": repository.name,
            "namespace": repository.namespace_user.username,
        },
    )


def create_config(
    session: Session,
    settings: Settings,
    repository: Repository,
    data: MirrorInput,
    *,
    auth: AuthContext,
    ip: str | None,
) -> RepoMirrorConfig:
    if get_config(session, repository) is not None:
        raise MirrorConfigExists(
            f"Mirror configuration already exits for repository {repository.full_name}"
        )
    assert data.external_reference is not None and data.sync_start_date is not None
    # Quay's order: the request's own rules first, then where it points, then the robot.
    _check_architectures(settings, data.architecture_filter)
    start = parse_start_date(data.sync_start_date)
    _check_rule(data.root_rule or [])
    validate_reference(settings, data.external_reference)
    validate_proxies(settings, data.external_registry_config)
    if not data.robot_username:
        raise MirrorError("'robot_username' is a required property")
    robot = _find_robot(session, repository, data.robot_username)
    _grant_write(session, repository, robot)
    box = _box(settings)
    config = RepoMirrorConfig(
        repository_id=repository.id,
        robot_id=robot.id,
        is_enabled=True if data.is_enabled is None else data.is_enabled,
        external_reference=data.external_reference,
        username_encrypted=box.encrypt(data.external_registry_username)
        if data.external_registry_username
        else None,
        password_encrypted=box.encrypt(data.external_registry_password)
        if data.external_registry_password
        else None,
        external_registry_config=json.dumps(data.external_registry_config or {}),
        sync_interval=data.sync_interval,
        sync_start_date=start,
        sync_retries_remaining=DEFAULT_RETRIES,
        sync_status=SyncStatus.NEVER_RUN,
        sync_transaction_id=str(uuid.uuid4()),
        rule_value=json.dumps(data.root_rule),
        skopeo_timeout_interval=data.skopeo_timeout_interval,
        architecture_filter=json.dumps(data.architecture_filter or []),
    )
    config.robot = robot
    session.add(config)
    repository.state = RepositoryState.MIRROR
    session.flush()
    _audit(session, repository, auth, ip, "external_reference", data.external_reference)
    return config


def update_config(
    session: Session,
    settings: Settings,
    repository: Repository,
    config: RepoMirrorConfig,
    data: MirrorInput,
    *,
    auth: AuthContext,
    ip: str | None,
) -> None:
    """Validate everything first, then apply each change with its own audit entry."""
    present = data.present
    start = parse_start_date(data.sync_start_date) if "sync_start_date" in present else None
    _check_architectures(settings, data.architecture_filter)
    if "external_registry_password" in present and data.external_registry_password is not None:
        if "external_registry_username" not in present:
            raise MirrorSettingRefused(
                "Unable to set a new password without also specifying a username."
            )
        if data.external_registry_username is None:
            raise MirrorSettingRefused("Unable to delete username while setting a password.")
    if "root_rule" in present:
        _check_rule(data.root_rule or [])
    if "external_reference" in present:
        validate_reference(settings, data.external_reference or "")
    if "external_registry_config" in present:
        validate_proxies(settings, data.external_registry_config)
    robot = None
    if "robot_username" in present:
        if not data.robot_username:
            raise MirrorRobotRefused("Could not find robot with specified username")
        robot = _find_robot(session, repository, data.robot_username)

    def change(changed: str, to: Any) -> None:
        _audit(session, repository, auth, ip, changed, to)

    if data.is_enabled is not None and data.is_enabled != config.is_enabled:
        config.is_enabled = data.is_enabled
        change("is_enabled", data.is_enabled)
    if data.external_reference and data.external_reference != config.external_reference:
        config.external_reference = data.external_reference
        change("external_reference", data.external_reference)
    if robot is not None and robot.id != config.robot_id:
        _grant_write(session, repository, robot)
        config.robot_id = robot.id
        config.robot = robot
    if start is not None and start != config.sync_start_date:
        config.sync_start_date = start
        change("sync_start_date", int(start.timestamp()))
    if data.sync_interval is not None and data.sync_interval != config.sync_interval:
        config.sync_interval = data.sync_interval
        change("sync_interval", data.sync_interval)
    timeout = data.skopeo_timeout_interval
    if timeout is not None and timeout != config.skopeo_timeout_interval:
        config.skopeo_timeout_interval = timeout
        change("skopeo_timeout_interval", timeout)
    if "architecture_filter" in present:
        architectures = json.dumps(data.architecture_filter or [])
        if architectures != config.architecture_filter:
            config.architecture_filter = architectures
            change("architecture_filter", data.architecture_filter or [])
    _update_credentials(settings, config, data, change)
    if data.external_registry_config is not None:
        _update_registry_config(config, data.external_registry_config, change)
    if data.root_rule is not None and json.dumps(data.root_rule) != config.rule_value:
        config.rule_value = json.dumps(data.root_rule)
        change("mirror_rule", data.root_rule)
    session.flush()


def _update_credentials(settings: Settings, config: RepoMirrorConfig, data: MirrorInput, change):
    box = _box(settings)
    present = data.present
    if "external_registry_username" not in present:
        return
    username = data.external_registry_username
    config.username_encrypted = box.encrypt(username) if username else None
    change("external_registry_username", username)
    if "external_registry_password" in present:
        password = data.external_registry_password
        config.password_encrypted = box.encrypt(password) if password else None
        change("external_registry_password", "********" if password else None)


def _update_registry_config(config: RepoMirrorConfig, new: dict[str, Any], change) -> None:
    stored = json.loads(config.external_registry_config or "{}")
    for key in ("verify_tls", "unsigned_images"):
        if key in new and stored.get(key) != new[key]:
            stored[key] = new[key]
            change(key, new[key])
    proxy = new.get("proxy")
    if isinstance(proxy, dict):
        stored_proxy = stored.setdefault("proxy", {})
        for key in ("http_proxy", "https_proxy", "no_proxy"):
            if key in proxy and stored_proxy.get(key) != proxy[key]:
                stored_proxy[key] = proxy[key]
                change(key, proxy[key])
    config.external_registry_config = json.dumps(stored)


def sync_now(
    session: Session, repository: Repository, config: RepoMirrorConfig, *, auth, ip
) -> bool:
    """Ask for a sync at the next worker pass; False while a sync is running."""
    if config.sync_status == SyncStatus.SYNCING:
        return False
    config.sync_status = SyncStatus.SYNC_NOW
    config.sync_expiration_date = None
    config.sync_retries_remaining = max(config.sync_retries_remaining, 1)
    config.sync_transaction_id = str(uuid.uuid4())
    _audit(session, repository, auth, ip, "sync_status", "SYNC_NOW")
    session.flush()
    return True


def sync_cancel(
    session: Session, repository: Repository, config: RepoMirrorConfig, *, auth, ip
) -> bool:
    """Stop a requested or running sync; a running one stops after its current tag."""
    if config.sync_status not in (SyncStatus.SYNCING, SyncStatus.SYNC_NOW):
        return False
    config.sync_status = SyncStatus.CANCEL
    config.sync_retries_remaining = 0
    config.sync_expiration_date = None
    config.sync_transaction_id = str(uuid.uuid4())
    _audit(session, repository, auth, ip, "sync_status", "SYNC_CANCEL")
    session.flush()
    return True


def decrypt_or_marker(settings: Settings, value: str | None) -> str | None:
    if value is None:
        return None
    plain = _box(settings).decrypt(value)
    return UNDECRYPTABLE if plain is None else plain


# --- the worker's side --------------------------------------------------------------------


@dataclass
class Claim:
    config_id: int
    transaction_id: str


def _due(now: dt.datetime):
    return or_(
        and_(
            RepoMirrorConfig.sync_status == SyncStatus.SYNC_NOW,
            RepoMirrorConfig.sync_expiration_date.is_(None),
        ),
        and_(
            RepoMirrorConfig.is_enabled.is_(True),
            RepoMirrorConfig.sync_retries_remaining > 0,
            RepoMirrorConfig.sync_start_date <= now,
            RepoMirrorConfig.sync_status.not_in([SyncStatus.SYNCING, SyncStatus.CANCEL]),
            RepoMirrorConfig.sync_expiration_date.is_(None),
        ),
        # A worker that died mid-sync leaves SYNCING behind; once its heartbeat stops
        # pushing the expiration forward, another worker takes the sync over.
        and_(
            RepoMirrorConfig.sync_status == SyncStatus.SYNCING,
            RepoMirrorConfig.sync_expiration_date <= now,
        ),
    )


def count_due(session: Session, now: dt.datetime) -> int:
    """Mirrors waiting for a worker (the repomirror queue depth)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(RepoMirrorConfig)
            .join(Repository, Repository.id == RepoMirrorConfig.repository_id)
            .where(
                Repository.state == RepositoryState.MIRROR,
                Repository.deleted.is_(False),
                _due(now),
            )
        )
        or 0
    )


def claim_due(session: Session, lease: dt.timedelta) -> Claim | None:
    """Take the most overdue mirror of a MIRROR-state repository, or None. The claim holds
    for `lease`; the worker's heartbeat renews it while the sync runs."""
    now = utcnow()
    candidates = session.execute(
        select(RepoMirrorConfig.id, RepoMirrorConfig.sync_transaction_id)
        .join(Repository, Repository.id == RepoMirrorConfig.repository_id)
        .where(
            Repository.state == RepositoryState.MIRROR,
            Repository.deleted.is_(False),
            _due(now),
        )
        .order_by(RepoMirrorConfig.sync_start_date.asc().nulls_first(), RepoMirrorConfig.id)
        .limit(5)
    ).all()
    for config_id, transaction_id in candidates:
        new_id = str(uuid.uuid4())
        result = session.execute(
            update(RepoMirrorConfig)
            .where(
                RepoMirrorConfig.id == config_id,
                RepoMirrorConfig.sync_transaction_id == transaction_id,
            )
            .values(
                sync_status=SyncStatus.SYNCING,
                sync_expiration_date=now + lease,
                sync_transaction_id=new_id,
            )
        )
        session.commit()
        if result.rowcount == 1:
            return Claim(config_id, new_id)
    session.rollback()
    return None


def heartbeat(session: Session, claim: Claim, lease: dt.timedelta) -> bool:
    """Renew a running sync's claim; False once it was cancelled or taken over."""
    result = session.execute(
        update(RepoMirrorConfig)
        .where(
            RepoMirrorConfig.id == claim.config_id,
            RepoMirrorConfig.sync_transaction_id == claim.transaction_id,
        )
        .values(sync_expiration_date=utcnow() + lease)
    )
    session.commit()
    return result.rowcount == 1


def is_cancelled(session: Session, claim: Claim) -> bool:
    """True once someone cancelled (or otherwise took over) the claimed sync."""
    current = session.scalar(
        select(RepoMirrorConfig.sync_transaction_id).where(RepoMirrorConfig.id == claim.config_id)
    )
    session.rollback()
    return current != claim.transaction_id


def next_start(config: RepoMirrorConfig, now: dt.datetime) -> dt.datetime:
    """The next run keeps the phase of the original schedule."""
    interval = config.sync_interval
    if interval <= 0 or config.sync_start_date is None:
        return now + dt.timedelta(seconds=max(interval, 0))
    elapsed = (now - config.sync_start_date).total_seconds()
    return now + dt.timedelta(seconds=interval - (elapsed % interval))


def release(session: Session, claim: Claim, outcome: SyncStatus) -> None:
    """Record how a claimed sync ended; a cancel that happened meanwhile wins."""
    config = session.get(RepoMirrorConfig, claim.config_id)
    if config is None or config.sync_transaction_id != claim.transaction_id:
        session.rollback()
        return
    now = utcnow()
    config.sync_expiration_date = None
    config.sync_transaction_id = str(uuid.uuid4())
    if outcome == SyncStatus.SUCCESS:
        config.sync_status = SyncStatus.SUCCESS
        config.sync_retries_remaining = DEFAULT_RETRIES
        config.sync_start_date = next_start(config, now)
    elif outcome == SyncStatus.CANCEL:
        config.sync_status = SyncStatus.CANCEL
        config.sync_retries_remaining = 0
        config.sync_start_date = None
    else:
        config.sync_status = SyncStatus.FAIL
        config.sync_retries_remaining -= 1
        if config.sync_retries_remaining <= 0:
            config.sync_retries_remaining = DEFAULT_RETRIES
            config.sync_start_date = next_start(config, now)
    session.commit()
