"""Quotas: limits per namespace, storage usage accounting, push-time enforcement, registry size.

Usage of a namespace is the total size of the DISTINCT blobs (layers and config blobs)
referenced by the manifests of its repositories; a blob shared by two repositories of one
namespace counts once. Usage is cached in size rows: a push adds the blobs its manifest
brings that nothing else in the repository or namespace referred to; every other change
(GC, a deleted repository) recomputes them, and they can be recomputed from scratch at any time.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Update, bindparam, delete, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from cargohold.config import Settings
from cargohold.db.base import is_postgres
from cargohold.db.models.accounts import User
from cargohold.db.models.notifications import UserNotification
from cargohold.db.models.quota import (
    NamespaceQuota,
    NamespaceSize,
    QuotaLimit,
    QuotaLimitType,
    RegistrySize,
    RepositorySize,
)
from cargohold.db.models.registry import Blob, BlobUpload, ManifestBlob, Repository
from cargohold.domain import errors as domain_errors
from cargohold.domain import notifications
from cargohold.domain.audit import log_action
from cargohold.domain.teams import Actor

MAX_LIMIT_BYTES = 2**63 - 1
QUOTA_EXCEEDED_MESSAGE = "Quota has been exceeded on namespace"
LIMIT_FORMAT_MESSAGE = "Invalid limit format, use a number followed by a unit (e.g. 1GiB)"
QUOTA_WARNING_KIND = "quota_warning"
QUOTA_ERROR_KIND = "quota_error"
THRESHOLD_MESSAGE = "Quota limit threshold must be between 1 and 100"
TYPE_MESSAGE = "Quota type must be one of [Warning, Reject]"

# What the `limit` strings of the quota API may look like (Quay's accepted spellings).
HUMAN_SIZE_PATTERN = (
    r"^(\d+\s?(B|KiB|MiB|GiB|TiB|PiB|EiB|ZiB|YiB|Ki|Mi|Gi|Ti|Pi|Ei|Zi|Yi"
    r"|KB|MB|GB|TB|PB|EB|ZB|YB|K|M|G|T|P|E|Z|Y)?)$"
)
_HUMAN_SIZE_RE = re.compile(HUMAN_SIZE_PATTERN)
_SPLIT_RE = re.compile(r"^(\d+)\s?([A-Za-z]*)$")
_DECIMAL_UNITS = {p: 1000 ** (i + 1) for i, p in enumerate("KMGTPEZY")}
_BINARY_UNITS = {f"{p}i": 1024 ** (i + 1) for i, p in enumerate("KMGTPE")}
_DISPLAY_UNITS = ["Byte", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]


class QuotaError(domain_errors.Invalid):
    """A request that breaks a quota rule (rendered as Quay's invalid_request ApiError)."""


class QuotaModelError(domain_errors.ModelError):
    """A rule Quay enforces in its data layer (rendered as a `{"message": ...}` 400)."""


class QuotaExceeded(domain_errors.QuotaExceeded):
    """A push would take the namespace over a Reject limit."""

    def __init__(self, namespace_id: int) -> None:
        super().__init__(QUOTA_EXCEEDED_MESSAGE)
        self.namespace_id = namespace_id


def quota_api_enabled(settings: Settings) -> bool:
    return (
        settings.FEATURE_SUPER_USERS
        and settings.FEATURE_QUOTA_MANAGEMENT
        and settings.FEATURE_EDIT_QUOTA
    )


def quota_fields_enabled(settings: Settings) -> bool:
    return settings.FEATURE_QUOTA_MANAGEMENT and settings.FEATURE_EDIT_QUOTA


def enforcement_enabled(settings: Settings) -> bool:
    return settings.FEATURE_QUOTA_MANAGEMENT and settings.FEATURE_VERIFY_QUOTA


# --- human sizes -------------------------------------------------------------------------


def parse_human_size(text: str) -> int:
    """`"512Mi"` -> 536870912, `"5G"` -> 5000000000 (SI without `i`, binary with it)."""
    match = _SPLIT_RE.match(text.strip()) if _HUMAN_SIZE_RE.match(text) else None
    if match is None:
        raise QuotaError(LIMIT_FORMAT_MESSAGE)
    number, unit = int(match.group(1)), match.group(2)
    if not unit:
        return number
    # A trailing B only spells out "bytes"; a bare B is not a unit Quay accepts.
    stem = unit[:-1] if unit.endswith("B") else unit
    multiplier = _BINARY_UNITS.get(stem) or _DECIMAL_UNITS.get(stem)
    if multiplier is None:
        raise QuotaError(LIMIT_FORMAT_MESSAGE)
    return number * multiplier


def format_human_size(size: int) -> str:
    """Binary units with one decimal: 1073741824 -> `"1.0 GiB"`, 500 -> `"500.0 Byte"`."""
    value = float(size)
    unit = 0
    while value >= 1024 and unit < len(_DISPLAY_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{value:.1f} {_DISPLAY_UNITS[unit]}"


def _check_limit_bytes(limit_bytes: int) -> None:
    if limit_bytes <= 0:
        raise QuotaError(f"Invalid quota size limit value: '{limit_bytes}'")
    if limit_bytes > MAX_LIMIT_BYTES:
        raise QuotaError("Unsupported quota size limit.")


# --- quotas and limits -------------------------------------------------------------------


def get_quota(session: Session, namespace: User) -> NamespaceQuota | None:
    return session.scalar(
        select(NamespaceQuota)
        .options(selectinload(NamespaceQuota.limits))
        .where(NamespaceQuota.namespace_id == namespace.id)
    )


def get_namespace_quota(session: Session, namespace: User, quota_id: int) -> NamespaceQuota | None:
    quota = get_quota(session, namespace)
    return quota if quota is not None and quota.id == quota_id else None


def _audit(
    session: Session, kind: str, namespace: User, actor: Actor | None, **metadata: Any
) -> None:
    """Organization quota changes are audited; the superuser panel's are not (as in Quay)."""
    if actor is not None:
        log_action(
            session,
            kind,
            namespace=namespace,
            auth=actor.auth,
            ip=actor.ip,
            metadata={"namespace": namespace.username, **metadata},
        )


def _size_fields(prefix: str, size: int) -> dict[str, Any]:
    return {f"{prefix}limit_bytes": size, f"{prefix}limit": format_human_size(size)}


def create_quota(
    session: Session,
    namespace: User,
    limit_bytes: int,
    *,
    exists_message: str,
    actor: Actor | None = None,
) -> NamespaceQuota:
    if get_quota(session, namespace) is not None:
        raise QuotaError(exists_message)
    _check_limit_bytes(limit_bytes)
    quota = NamespaceQuota(namespace_id=namespace.id, limit_bytes=limit_bytes)
    session.add(quota)
    session.flush()
    _audit(session, "org_create_quota", namespace, actor, **_size_fields("", limit_bytes))
    return quota


def change_quota(
    session: Session,
    namespace: User,
    quota: NamespaceQuota,
    limit_bytes: int | None,
    actor: Actor | None = None,
) -> None:
    """Apply a new size; 0 or absent changes nothing (as in Quay)."""
    if not limit_bytes:
        return
    _check_limit_bytes(limit_bytes)
    previous = quota.limit_bytes
    quota.limit_bytes = limit_bytes
    _audit(
        session,
        "org_change_quota",
        namespace,
        actor,
        **_size_fields("", limit_bytes),
        **_size_fields("previous_", previous),
    )


def delete_quota(
    session: Session, namespace: User, quota: NamespaceQuota, actor: Actor | None = None
) -> None:
    deleted_id, limit_bytes = quota.id, quota.limit_bytes
    session.execute(delete(QuotaLimit).where(QuotaLimit.quota_id == quota.id))
    session.delete(quota)
    session.flush()
    _audit(
        session,
        "org_delete_quota",
        namespace,
        actor,
        quota_id=deleted_id,
        **_size_fields("", limit_bytes),
    )


def delete_namespace_quota(session: Session, namespace_id: int) -> None:
    """Drop the quota, its limits and the cached size of a namespace being deleted."""
    quota_ids = select(NamespaceQuota.id).where(NamespaceQuota.namespace_id == namespace_id)
    session.execute(delete(QuotaLimit).where(QuotaLimit.quota_id.in_(quota_ids)))
    session.execute(delete(NamespaceQuota).where(NamespaceQuota.namespace_id == namespace_id))
    session.execute(delete(NamespaceSize).where(NamespaceSize.namespace_id == namespace_id))


def parse_limit_type(value: Any) -> QuotaLimitType:
    if isinstance(value, str):
        for member in QuotaLimitType:
            if member.value.lower() == value.lower():
                return member
    raise QuotaModelError(TYPE_MESSAGE)


def _limit_fields(limit: QuotaLimit) -> dict[str, Any]:
    return {"type": limit.limit_type.value, "threshold_percent": limit.percent_of_limit}


def create_limit(
    session: Session,
    namespace: User,
    quota: NamespaceQuota,
    limit_type: str,
    threshold_percent: int,
    actor: Actor,
) -> QuotaLimit:
    """Checks in Quay's order, so that each bad input gets the message Quay gives it."""
    if threshold_percent != 0 and not 1 <= threshold_percent <= 100:
        raise QuotaModelError(THRESHOLD_MESSAGE)
    parsed = parse_limit_type(limit_type)
    for existing in quota.limits:
        if existing.limit_type is parsed and (
            threshold_percent == 0 or existing.percent_of_limit == threshold_percent
        ):
            raise QuotaError("Quota limit already exists")
    if threshold_percent == 0:
        raise QuotaError(THRESHOLD_MESSAGE)
    limit = QuotaLimit(quota=quota, limit_type=parsed, percent_of_limit=threshold_percent)
    session.add(limit)
    session.flush()
    _audit(
        session,
        "org_create_quota_limit",
        namespace,
        actor,
        type=limit_type,
        threshold_percent=threshold_percent,
    )
    return limit


def get_limit(quota: NamespaceQuota, limit_id: int) -> QuotaLimit | None:
    return next((limit for limit in quota.limits if limit.id == limit_id), None)


def limit_belongs_elsewhere(session: Session, limit_id: int) -> bool:
    return session.get(QuotaLimit, limit_id) is not None


def change_limit(
    session: Session,
    namespace: User,
    limit: QuotaLimit,
    limit_type: str | None,
    threshold_percent: int | None,
    actor: Actor,
) -> None:
    """Type first, then threshold: a bad threshold leaves a good type applied, as in Quay."""
    previous = _limit_fields(limit)
    if limit_type is not None:
        limit.limit_type = parse_limit_type(limit_type)
    if threshold_percent is not None:
        if not 1 <= threshold_percent <= 100:
            raise QuotaModelError(THRESHOLD_MESSAGE)
        limit.percent_of_limit = threshold_percent
    _audit(
        session,
        "org_change_quota_limit",
        namespace,
        actor,
        **_limit_fields(limit),
        previous_type=previous["type"],
        previous_threshold_percent=previous["threshold_percent"],
    )


def delete_limit(session: Session, namespace: User, limit: QuotaLimit, actor: Actor) -> None:
    details = {"limit_id": limit.id, **_limit_fields(limit)}
    limit.quota.limits.remove(limit)
    session.flush()
    _audit(session, "org_delete_quota_limit", namespace, actor, **details)


# --- usage reports --------------------------------------------------------------------------


@dataclass(frozen=True)
class NamespaceQuotaReport:
    """A namespace's quota (if it has one) and how much of it is used."""

    quota: NamespaceQuota | None
    used_bytes: int
    # The namespace's own limit, else the system default, else None (unlimited).
    configured_bytes: int | None
    # waiting, running or complete: how far the first size calculation has got.
    backfill_status: str


@dataclass(frozen=True)
class RepositoryQuotaReport:
    used_bytes: int
    configured_bytes: int | None


def _backfill_status(row: NamespaceSize | None) -> str:
    if row is None or (row.backfill_start_ms is None and not row.backfill_complete):
        return "waiting"
    if row.backfill_start_ms is not None and not row.backfill_complete:
        return "running"
    if row.backfill_start_ms is not None and row.backfill_complete:
        return "complete"
    return ""


def _configured_quota(settings: Settings, quota: NamespaceQuota | None) -> int | None:
    if quota is not None:
        return int(quota.limit_bytes)
    return settings.DEFAULT_SYSTEM_REJECT_QUOTA_BYTES or None


def namespace_quota_reports(
    session: Session, settings: Settings, namespace_ids: Iterable[int]
) -> dict[int, NamespaceQuotaReport]:
    """The quota and usage of each namespace, loaded in two queries for any number."""
    ids = list(dict.fromkeys(namespace_ids))
    if not ids:
        return {}
    quotas = {
        quota.namespace_id: quota
        for quota in session.scalars(
            select(NamespaceQuota)
            .options(selectinload(NamespaceQuota.limits))
            .where(NamespaceQuota.namespace_id.in_(ids))
        )
    }
    sizes = {
        row.namespace_id: row
        for row in session.scalars(select(NamespaceSize).where(NamespaceSize.namespace_id.in_(ids)))
    }
    reports: dict[int, NamespaceQuotaReport] = {}
    for namespace_id in ids:
        quota = quotas.get(namespace_id)
        row = sizes.get(namespace_id)
        reports[namespace_id] = NamespaceQuotaReport(
            quota=quota,
            used_bytes=int(row.size_bytes) if row is not None else 0,
            configured_bytes=_configured_quota(settings, quota),
            backfill_status=_backfill_status(row),
        )
    return reports


def repository_quota_reports(
    session: Session, settings: Settings, repositories: Iterable[Repository]
) -> dict[int, RepositoryQuotaReport]:
    """Usage and the namespace's limit for each repository of a repository list, in two queries."""
    repos = list(repositories)
    if not repos:
        return {}
    sizes = dict(
        session.execute(
            select(RepositorySize.repository_id, RepositorySize.size_bytes).where(
                RepositorySize.repository_id.in_([r.id for r in repos])
            )
        ).all()
    )
    namespace_ids = {r.namespace_user_id for r in repos}
    quotas = dict(
        session.execute(
            select(NamespaceQuota.namespace_id, NamespaceQuota.limit_bytes).where(
                NamespaceQuota.namespace_id.in_(namespace_ids)
            )
        ).all()
    )
    default = settings.DEFAULT_SYSTEM_REJECT_QUOTA_BYTES or None
    return {
        repo.id: RepositoryQuotaReport(
            used_bytes=int(sizes.get(repo.id) or 0),
            configured_bytes=int(quotas[repo.namespace_user_id])
            if repo.namespace_user_id in quotas
            else default,
        )
        for repo in repos
    }


# --- usage accounting ----------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


def compute_namespace_size(session: Session, namespace_id: int) -> int:
    """Distinct blobs referenced by manifests of the namespace's live repositories."""
    blob_ids = (
        select(ManifestBlob.blob_id)
        .join(Repository, Repository.id == ManifestBlob.repository_id)
        .where(Repository.namespace_user_id == namespace_id, Repository.deleted.is_(False))
    )
    total = session.scalar(select(func.sum(Blob.size)).where(Blob.id.in_(blob_ids)))
    return int(total or 0)


def compute_repository_size(session: Session, repository_id: int) -> int:
    blob_ids = select(ManifestBlob.blob_id).where(ManifestBlob.repository_id == repository_id)
    total = session.scalar(select(func.sum(Blob.size)).where(Blob.id.in_(blob_ids)))
    return int(total or 0)


def _tracked(namespace: User) -> bool:
    """Robots and disabled namespaces are not accounted, as in Quay."""
    return not namespace.robot and namespace.enabled and not namespace.deleted


def _size_row(session: Session, model, key, value: int, **create):
    """The size row for a key, created if missing; a concurrent push creating it first wins.

    Locked until commit on PostgreSQL, so that a size computed after this call sees every
    change a transaction that wrote the row before committed (no lost update)."""
    query = select(model).where(key == value)
    if is_postgres(session):
        query = query.with_for_update()
    row = session.scalar(query)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = model(**create)
            session.add(row)
            session.flush()
        return row
    except IntegrityError:
        row = session.scalar(query)
        if row is None:
            raise
        return row


def _store_size(
    session: Session, model, key_name: str, key_value: int, compute: Callable[[], int]
) -> int:
    """Store a size computed from scratch, once the row of `model` whose `key_name` column
    is `key_value` is locked; returns it."""
    row = _size_row(
        session,
        model,
        getattr(model, key_name),
        key_value,
        **{key_name: key_value},
        backfill_start_ms=_now_ms(),
    )
    size = compute()
    row.size_bytes = size
    row.backfill_start_ms = row.backfill_start_ms or _now_ms()
    row.backfill_complete = True
    return size


def _store_namespace_size(session: Session, namespace_id: int) -> int:
    return _store_size(
        session,
        NamespaceSize,
        "namespace_id",
        namespace_id,
        lambda: compute_namespace_size(session, namespace_id),
    )


def _store_repository_size(session: Session, repository_id: int) -> int:
    return _store_size(
        session,
        RepositorySize,
        "repository_id",
        repository_id,
        lambda: compute_repository_size(session, repository_id),
    )


def _invalidate(session: Session, namespace_id: int, repository_id: int) -> None:
    values = {"size_bytes": 0, "backfill_start_ms": None, "backfill_complete": False}
    session.execute(
        update(RepositorySize).where(RepositorySize.repository_id == repository_id).values(values)
    )
    session.execute(
        update(NamespaceSize).where(NamespaceSize.namespace_id == namespace_id).values(values)
    )


def record_manifest_change(
    session: Session, settings: Settings, namespace_id: int, repository_id: int
) -> None:
    """Call inside the transaction that added or removed manifests of a repository: both
    totals are computed from scratch (pushes use record_manifest_push).

    With quota management off the cached totals are reset instead, so that they are
    recomputed by the backfill worker when it is turned back on.
    """
    if not settings.FEATURE_QUOTA_MANAGEMENT:
        if settings.QUOTA_INVALIDATE_TOTALS:
            _invalidate(session, namespace_id, repository_id)
        return
    namespace = session.get(User, namespace_id)
    if namespace is None or not _tracked(namespace):
        return
    session.flush()
    _store_repository_size(session, repository_id)
    _store_namespace_size(session, namespace_id)


# The bytes of the blobs `blobs` (those the new manifest `manifest` refers to) that no other
# manifest of the repository, or of the namespace's live repositories, referred to: what the
# push adds to each total. Both look a blob up by manifest_blob's blob_id index.
_new_repository_bytes = (
    select(func.coalesce(func.sum(Blob.size), 0))
    .where(
        Blob.id.in_(bindparam("blobs", expanding=True)),
        ~exists().where(
            ManifestBlob.blob_id == Blob.id,
            ManifestBlob.repository_id == bindparam("repository"),
            ManifestBlob.manifest_id != bindparam("manifest"),
        ),
    )
    .scalar_subquery()
)
_new_namespace_bytes = (
    select(func.coalesce(func.sum(Blob.size), 0))
    .where(
        Blob.id.in_(bindparam("blobs", expanding=True)),
        ~exists().where(
            ManifestBlob.blob_id == Blob.id,
            ManifestBlob.manifest_id != bindparam("manifest"),
            Repository.id == ManifestBlob.repository_id,
            Repository.namespace_user_id == bindparam("namespace"),
            Repository.deleted.is_(False),
        ),
    )
    .scalar_subquery()
)
_repository_sizes = RepositorySize.__table__
_namespace_sizes = NamespaceSize.__table__
# Only a complete total is adjusted; a missing or invalidated one is computed from scratch.
_add_repository_bytes = (
    update(_repository_sizes)
    .where(
        _repository_sizes.c.repository_id == bindparam("repository"),
        _repository_sizes.c.backfill_complete.is_(True),
    )
    .values(size_bytes=_repository_sizes.c.size_bytes + _new_repository_bytes)
)
_add_namespace_bytes = (
    update(_namespace_sizes)
    .where(
        _namespace_sizes.c.namespace_id == bindparam("namespace"),
        _namespace_sizes.c.backfill_complete.is_(True),
    )
    .values(size_bytes=_namespace_sizes.c.size_bytes + _new_namespace_bytes)
)
_lock_repository_size = (
    select(_repository_sizes.c.backfill_complete)
    .where(_repository_sizes.c.repository_id == bindparam("repository"))
    .with_for_update()
)
_lock_namespace_size = (
    select(_namespace_sizes.c.backfill_complete)
    .where(_namespace_sizes.c.namespace_id == bindparam("namespace"))
    .with_for_update()
)


def _add_new_bytes(session: Session, lock: Select, add: Update, values: dict[str, Any]) -> bool:
    """Add what a push adds to a complete total; False when there is none to adjust.

    On PostgreSQL the row is locked by a statement of its own first: the adding UPDATE then
    starts after any concurrent push of the same blobs committed and sees its references, so
    a blob two pushes bring at once counts once. (An UPDATE that waits for the lock would
    keep the sum its snapshot computed before waiting.) SQLite runs one writer at a time."""
    if is_postgres(session) and not session.execute(lock, values).scalar():
        return False
    return session.execute(add, values).rowcount == 1


def record_manifest_push(
    session: Session,
    settings: Settings,
    namespace_id: int,
    repository_id: int,
    *,
    namespace_enabled: bool,
    manifest_id: int,
    new_blob_ids: frozenset[int],
) -> None:
    """Call inside the transaction that stored manifest `manifest_id`, which brought the
    references `new_blob_ids` (none when it was stored before).

    Complete totals grow by the sizes of the blobs nothing else in their scope referred to;
    a total missing or invalidated is computed from scratch. Every other change of a
    repository's manifests goes through record_manifest_change, so a complete total always
    equals compute_*_size.
    """
    if not settings.FEATURE_QUOTA_MANAGEMENT:
        if settings.QUOTA_INVALIDATE_TOTALS:
            _invalidate(session, namespace_id, repository_id)
        return
    if not namespace_enabled:
        # Not accounted while disabled: the totals are recomputed once it is enabled again.
        _invalidate(session, namespace_id, repository_id)
        return
    values = {
        "repository": repository_id,
        "namespace": namespace_id,
        "manifest": manifest_id,
        "blobs": sorted(new_blob_ids),
    }
    if not _add_new_bytes(session, _lock_repository_size, _add_repository_bytes, values):
        _store_repository_size(session, repository_id)
    if not _add_new_bytes(session, _lock_namespace_size, _add_namespace_bytes, values):
        _store_namespace_size(session, namespace_id)


def record_repository_deleted(session: Session, namespace_id: int) -> None:
    """A repository of the namespace was marked deleted: its blobs stop counting now, unless
    another live repository refers to them. A total that is not complete stays as it is."""
    if is_postgres(session):
        complete = session.execute(_lock_namespace_size, {"namespace": namespace_id}).scalar()
    else:
        complete = session.scalar(
            select(NamespaceSize.backfill_complete).where(
                NamespaceSize.namespace_id == namespace_id
            )
        )
    if complete:
        session.flush()
        _store_namespace_size(session, namespace_id)


def record_namespace_change(session: Session, settings: Settings, namespace_id: int) -> None:
    """Refresh a namespace's usage after repositories of it were purged."""
    namespace = session.get(User, namespace_id)
    if settings.FEATURE_QUOTA_MANAGEMENT and namespace is not None and _tracked(namespace):
        session.flush()
        _store_namespace_size(session, namespace_id)


def recalculate_namespace(session: Session, namespace: User) -> int:
    """Recompute a namespace and each of its repositories from scratch; returns its usage."""
    repository_ids = session.scalars(
        select(Repository.id).where(
            Repository.namespace_user_id == namespace.id, Repository.deleted.is_(False)
        )
    ).all()
    for repository_id in repository_ids:
        _store_repository_size(session, repository_id)
    return _store_namespace_size(session, namespace.id)


def namespaces_needing_backfill(session: Session, batch_size: int) -> list[User]:
    """Enabled, non-robot namespaces with no complete size row."""
    complete = select(NamespaceSize.namespace_id).where(NamespaceSize.backfill_complete.is_(True))
    return list(
        session.scalars(
            select(User)
            .where(
                User.robot.is_(False),
                User.enabled.is_(True),
                User.deleted.is_(False),
                User.id.not_in(complete),
            )
            .order_by(User.id)
            .limit(batch_size)
        )
    )


def namespace_usage(session: Session, namespace_id: int) -> int:
    """The cached usage of a namespace (0 before anything was pushed)."""
    size = session.scalar(
        select(NamespaceSize.size_bytes).where(NamespaceSize.namespace_id == namespace_id)
    )
    return int(size or 0)


# --- enforcement ---------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaVerdict:
    severity: QuotaLimitType | None
    usage_bytes: int
    threshold_bytes: int | None
    quota_limit_bytes: int | None


def evaluate(session: Session, settings: Settings, namespace_id: int, usage: int) -> QuotaVerdict:
    """The most severe crossed limit: the crossed limit with the highest threshold wins."""
    quota = session.scalar(
        select(NamespaceQuota)
        .options(selectinload(NamespaceQuota.limits))
        .where(NamespaceQuota.namespace_id == namespace_id)
    )
    if quota is None:
        default = settings.DEFAULT_SYSTEM_REJECT_QUOTA_BYTES
        if default > 0 and usage >= default:
            return QuotaVerdict(QuotaLimitType.REJECT, usage, default, default)
        return QuotaVerdict(None, usage, None, default or None)
    crossed: QuotaLimit | None = None
    crossed_bytes = -1
    for limit in quota.limits:
        threshold = quota.limit_bytes * limit.percent_of_limit // 100
        if usage >= threshold and threshold > crossed_bytes:
            crossed, crossed_bytes = limit, threshold
    if crossed is None:
        return QuotaVerdict(None, usage, None, quota.limit_bytes)
    return QuotaVerdict(crossed.limit_type, usage, crossed_bytes, quota.limit_bytes)


def _in_progress_bytes(session: Session, repository_id: int) -> int:
    total = session.scalar(
        select(func.sum(BlobUpload.byte_count)).where(BlobUpload.repository_id == repository_id)
    )
    return int(total or 0)


def _refuse_if_rejected(
    session: Session, settings: Settings, namespace_id: int, usage: int
) -> None:
    if evaluate(session, settings, namespace_id, usage).severity is QuotaLimitType.REJECT:
        raise QuotaExceeded(namespace_id)


_QUOTA_TABLE = NamespaceQuota.__table__
# Built once and run as plain Core: every blob upload and manifest push asks it.
_HAS_QUOTA = (
    select(_QUOTA_TABLE.c.id).where(_QUOTA_TABLE.c.namespace_id == bindparam("namespace")).limit(1)
)


def _limited(session: Session, settings: Settings, namespace_id: int) -> bool:
    """Whether any limit could apply to the namespace: its own quota or the system default.
    Checked first because it is one indexed lookup, and most namespaces have no quota."""
    if not enforcement_enabled(settings):
        return False
    if settings.DEFAULT_SYSTEM_REJECT_QUOTA_BYTES > 0:
        return True
    found = session.connection().execute(_HAS_QUOTA, {"namespace": namespace_id}).first()
    return found is not None


def check_upload_start(session: Session, settings: Settings, namespace_id: int) -> bool:
    """Before a blob upload, a cross-repository mount or a manifest push: namespace usage alone.
    Returns whether any limit applies (check_manifest takes it, to look only once)."""
    limited = _limited(session, settings, namespace_id)
    if limited:
        _refuse_if_rejected(session, settings, namespace_id, namespace_usage(session, namespace_id))
    return limited


def check_upload_data(
    session: Session,
    settings: Settings,
    namespace_id: int,
    repository_id: int,
    incoming_bytes: int = 0,
) -> None:
    """Before a chunk or the final piece of an upload is accepted.

    Counts the namespace usage, every upload in progress in this repository, and the bytes
    of this request: a push is refused before the bytes that would cross the limit land.
    """
    if not _limited(session, settings, namespace_id):
        return
    usage = (
        namespace_usage(session, namespace_id)
        + _in_progress_bytes(session, repository_id)
        + max(incoming_bytes, 0)
    )
    _refuse_if_rejected(session, settings, namespace_id, usage)


def check_manifest(
    session: Session, settings: Settings, namespace_id: int, *, limited: bool | None = None
) -> None:
    """Inside the manifest-push transaction, after the manifest and its blob links were added.
    `limited` is check_upload_start's answer in the same transaction, when it was asked.

    Raising makes the caller roll the whole push back, so a refused manifest leaves nothing.
    Crossing a Warning limit lets the push through and tells the namespace's admins.
    """
    if limited is None:
        limited = _limited(session, settings, namespace_id)
    if not limited:
        return
    session.flush()
    usage = compute_namespace_size(session, namespace_id)
    severity = evaluate(session, settings, namespace_id, usage).severity
    if severity is QuotaLimitType.REJECT:
        raise QuotaExceeded(namespace_id)
    if severity is QuotaLimitType.WARNING:
        _notify_admins(session, settings, namespace_id, QUOTA_WARNING_KIND, {})


def notify_refusal(session: Session, settings: Settings, exc: QuotaExceeded) -> None:
    """Tell the namespace's admins a push was refused (the caller commits)."""
    _notify_admins(session, settings, exc.namespace_id, QUOTA_ERROR_KIND, {"severity": "Reject"})


def _notify_admins(
    session: Session, settings: Settings, namespace_id: int, kind: str, extra: dict[str, Any]
) -> None:
    """One notification on the namespace (shown to a user, or to every admin of an
    organization), not repeated while an identical one is still undismissed."""
    namespace = session.get(User, namespace_id)
    if namespace is None:
        return
    metadata = {**extra, "namespace": namespace.username}
    existing = session.scalars(
        select(UserNotification.metadata_json).where(
            UserNotification.target_id == namespace_id,
            UserNotification.kind == kind,
            UserNotification.dismissed.is_(False),
        )
    )
    if any(json.loads(raw) == metadata for raw in existing):
        return
    notifications.notify(session, settings, namespace, kind, metadata)


# --- registry size -------------------------------------------------------------------------


def registry_size_view(session: Session) -> dict[str, Any]:
    row = session.scalar(select(RegistrySize).order_by(RegistrySize.id).limit(1))
    if row is None:
        return {"size_bytes": 0, "last_ran": None, "queued": False, "running": False}
    return {
        "size_bytes": int(row.size_bytes),
        "last_ran": row.completed_ms,
        "queued": row.queued,
        "running": row.running,
    }


def queue_registry_size(session: Session) -> bool:
    """Ask for a calculation. True when newly queued, False when one is queued or running."""
    row = session.scalar(select(RegistrySize).order_by(RegistrySize.id).limit(1).with_for_update())
    if row is None:
        session.add(RegistrySize(size_bytes=0, running=False, queued=True))
        return True
    if row.queued or row.running:
        return False
    result = session.execute(
        update(RegistrySize)
        .where(
            RegistrySize.id == row.id,
            RegistrySize.queued.is_(False),
            RegistrySize.running.is_(False),
        )
        .values(queued=True)
    )
    return result.rowcount == 1


def claim_registry_size_run(session: Session) -> int | None:
    """Move a queued calculation to running; the row id when this caller won the claim."""
    row_id = session.scalar(
        select(RegistrySize.id).where(
            RegistrySize.queued.is_(True), RegistrySize.running.is_(False)
        )
    )
    if row_id is None:
        return None
    result = session.execute(
        update(RegistrySize)
        .where(
            RegistrySize.id == row_id,
            RegistrySize.queued.is_(True),
            RegistrySize.running.is_(False),
        )
        .values(queued=False, running=True)
    )
    return row_id if result.rowcount == 1 else None


def total_stored_bytes(session: Session) -> int:
    """Every stored blob once, referenced or not (unreferenced ones still occupy storage)."""
    return int(session.scalar(select(func.coalesce(func.sum(Blob.size), 0))) or 0)


def finish_registry_size_run(session: Session, row_id: int, size: int) -> None:
    session.execute(
        update(RegistrySize)
        .where(RegistrySize.id == row_id)
        .values(size_bytes=size, running=False, queued=False, completed_ms=_now_ms())
    )
