"""Tag history as the API sees it: listing lifetimes, moving, deleting, restoring, expiring.

A tag name has at most one alive row (end unset or in the future); every move, delete or
restore ends that row and, except for deletes, starts a new one, so the rows of a name are
its history. Rows ended longer ago than the namespace's time-machine window are left for
garbage collection. Each change the API makes is audited here, in the same transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from cargohold.config import parse_duration
from cargohold.db.base import is_postgres
from cargohold.db.models.registry import Manifest, ManifestChild, ManifestLabel, Repository, Tag
from cargohold.domain import manifests, permissions, tags
from cargohold.domain.audit import log_action
from cargohold.domain.errors import Forbidden, ModelError, NotFound
from cargohold.domain.tags import TagError, TagImmutable
from cargohold.domain.teams import Actor

EXPIRATION_MIN_S = 3600
EXPIRATION_MAX_S = 104 * 7 * 24 * 3600
EXPIRES_AFTER_LABEL = "quay.expires-after"
# Quay answers an expiration in the past with its framework's generic bad-request text.
PAST_EXPIRATION_TEXT = (
    "The browser (or proxy) sent a request that this server could not understand."
)

now_ms = tags.now_ms
_alive = tags.alive_at


def is_manifest_list(manifest: Manifest) -> bool:
    return manifest.media_type in manifests.INDEX_TYPES


def alive_tag(session: Session, repository: Repository, name: str) -> Tag | None:
    """The visible alive row of a tag name."""
    return session.scalar(
        select(Tag)
        .options(joinedload(Tag.manifest))
        .where(
            Tag.repository_id == repository.id,
            Tag.name == name,
            Tag.hidden.is_(False),
            _alive(now_ms()),
        )
    )


def alive_tags(session: Session, repository: Repository, *, limit: int) -> Sequence[Tag]:
    return session.scalars(
        select(Tag)
        .options(joinedload(Tag.manifest))
        .where(Tag.repository_id == repository.id, Tag.hidden.is_(False), _alive(now_ms()))
        .order_by(Tag.name)
        .limit(limit)
    ).all()


@dataclass
class HistoryPage:
    tags: Sequence[Tag]
    has_additional: bool
    # For manifest lists on the page: each child digest the list names → whether it is stored.
    presence: dict[int, dict[str, bool]] = field(default_factory=dict)


def list_history(
    session: Session,
    repository: Repository,
    *,
    only_active: bool,
    page: int,
    limit: int,
    name_contains: str | None = None,
    name_equals: Sequence[str] = (),
) -> HistoryPage:
    """Visible rows, newest start first, one page of `limit`.

    The page's ids come from the ordering index alone; only those rows are then loaded
    with their manifests, so the cost of a page does not grow with what it skips.
    """
    query = select(Tag.id).where(Tag.repository_id == repository.id, Tag.hidden.is_(False))
    if only_active:
        query = query.where(_alive(now_ms()))
    if name_contains:
        query = query.where(Tag.name.icontains(name_contains, autoescape=True))
    for name in name_equals:
        query = query.where(Tag.name == name)
    order = (Tag.lifetime_start_ms.desc(), Tag.name, Tag.id.desc())
    ids = session.scalars(query.order_by(*order).offset((page - 1) * limit).limit(limit + 1)).all()
    if not ids:
        return HistoryPage([], False)
    rows = session.scalars(
        select(Tag)
        .options(joinedload(Tag.manifest).defer(Manifest.manifest_bytes))
        .where(Tag.id.in_(ids[:limit]))
        .order_by(*order)
    ).all()
    presence = child_presence(session, [row.manifest for row in rows])
    return HistoryPage(rows, len(ids) > limit, presence)


def child_presence(session: Session, manifests: Sequence[Manifest]) -> dict[int, dict[str, bool]]:
    """For manifest lists: each child digest the list names → whether the child is stored."""
    lists = {manifest.id: manifest for manifest in manifests if is_manifest_list(manifest)}
    if not lists:
        return {}
    stored: dict[int, set[str]] = {manifest_id: set() for manifest_id in lists}
    rows = session.execute(
        select(ManifestChild.manifest_id, Manifest.digest)
        .join(Manifest, Manifest.id == ManifestChild.child_manifest_id)
        .where(ManifestChild.manifest_id.in_(list(lists)))
    ).all()
    for list_id, digest in rows:
        stored[list_id].add(digest)
    bodies = session.execute(
        select(Manifest.id, Manifest.manifest_bytes).where(Manifest.id.in_(list(lists)))
    ).all()
    presence: dict[int, dict[str, bool]] = {}
    for manifest_id, body in bodies:
        try:
            children = json.loads(body).get("manifests") or []
        except (ValueError, AttributeError):
            children = []
        digests = [child.get("digest") for child in children if isinstance(child, dict)]
        presence[manifest_id] = {
            digest: digest in stored[manifest_id] for digest in digests if isinstance(digest, str)
        }
    return presence


def find_manifest(session: Session, repository: Repository, digest: str) -> Manifest | None:
    """Any manifest still stored in the repository, whether or not a tag is alive on it."""
    return manifests.get_manifest(session, repository.id, digest)


def find_reachable_manifest(
    session: Session, repository: Repository, digest: str
) -> Manifest | None:
    """A manifest an alive tag references, directly or through an alive list."""
    return manifests.get_reachable_manifest(session, repository.id, digest, now_ms())


def _stored_manifest(session: Session, repository: Repository, digest: str) -> Manifest:
    manifest = find_manifest(session, repository, digest)
    if manifest is None:
        raise NotFound()
    return manifest


def _required_alive_tag(session: Session, repository: Repository, name: str) -> Tag:
    tag = alive_tag(session, repository, name)
    if tag is None:
        raise NotFound()
    return tag


def _lock_repository(session: Session, repository: Repository) -> None:
    """Tag changes in one repository run one at a time (PostgreSQL row lock)."""
    if is_postgres(session):
        session.execute(
            select(Repository.id).where(Repository.id == repository.id).with_for_update()
        )


def _label_expiry_ms(session: Session, manifest: Manifest, start_ms: int) -> int | None:
    value = session.scalar(
        select(ManifestLabel.value)
        .where(ManifestLabel.manifest_id == manifest.id, ManifestLabel.key == EXPIRES_AFTER_LABEL)
        .order_by(ManifestLabel.id.desc())
        .limit(1)
    )
    if value is None:
        return None
    try:
        return start_ms + parse_duration(value) * 1000
    except ValueError:
        return None


def retarget(
    session: Session,
    repository: Repository,
    name: str,
    manifest: Manifest,
    *,
    reversion: bool = False,
    operation: str = "overwrite",
) -> tuple[Tag, Tag | None]:
    """Point `name` at `manifest`: end the alive row (if any) and start a new one.

    Returns the new row and the row it replaced.
    """
    _lock_repository(session, repository)
    tag, previous = tags.set_tag(
        session,
        repository.id,
        name,
        manifest.id,
        reversion=reversion,
        end_ms=_label_expiry_ms(session, manifest, now_ms()),
        operation=operation,
    )
    tag.manifest = manifest
    return tag, previous


def clamped_end_ms(tag: Tag, expiration_s: float) -> int:
    """The stored end for a requested expiration: 1 hour to 104 weeks after the tag's start."""
    offset = int(expiration_s) - tag.lifetime_start_ms // 1000
    offset = max(EXPIRATION_MIN_S, min(EXPIRATION_MAX_S, offset))
    return tag.lifetime_start_ms + offset * 1000


def change_expiration(session: Session, tag: Tag, expiration_s: float | None) -> int | None:
    """Set (clamped) or clear the end of an alive row; returns the previous end.

    An immutable tag never expires: setting an end on one is refused.

    The update is conditional on the end being unchanged since it was read, so a
    concurrent move or delete is reported instead of silently overwritten.
    """
    if tag.immutable and expiration_s is not None:
        raise TagImmutable(tag.name, "set expiration on")
    previous = tag.lifetime_end_ms
    new_end = None if expiration_s is None else clamped_end_ms(tag, expiration_s)
    if new_end == previous:
        return previous
    condition = (
        Tag.lifetime_end_ms.is_(None) if previous is None else Tag.lifetime_end_ms == previous
    )
    result = session.execute(
        update(Tag).where(Tag.id == tag.id, condition).values(lifetime_end_ms=new_end)
    )
    if result.rowcount != 1:
        raise TagError("Could not update tag expiration; Tag has probably changed")
    session.refresh(tag)
    return previous


def expire_from_time_machine(
    session: Session,
    repository: Repository,
    name: str,
    *,
    manifest: Manifest | None,
    is_alive: bool,
    window_s: int,
) -> int:
    """Push rows of `name` out of the time machine (GC may reclaim them); returns rows changed.

    Alive: the alive row ends at `now - window`. Otherwise: every row of that name and
    manifest that ended inside the window is moved just before it (distinct ends kept).
    """
    _lock_repository(session, repository)
    at = now_ms()
    cutoff = at - window_s * 1000
    if is_alive:
        tag = alive_tag(session, repository, name)
        if (
            tag is None
            or tag.immutable
            or (manifest is not None and tag.manifest_id != manifest.id)
        ):
            return 0
        tag.lifetime_end_ms = cutoff
        session.flush()
        return 1
    if manifest is None or window_s <= 0:
        return 0
    rows = session.scalars(
        select(Tag)
        .where(
            Tag.repository_id == repository.id,
            Tag.name == name,
            Tag.hidden.is_(False),
            Tag.immutable.is_(False),
            Tag.manifest_id == manifest.id,
            Tag.lifetime_end_ms > cutoff,
            Tag.lifetime_end_ms <= at,
        )
        .order_by(Tag.lifetime_end_ms)
    ).all()
    for step, tag in enumerate(rows, start=1):
        tag.lifetime_end_ms = cutoff - step
    session.flush()
    return len(rows)


# --- Changes the API makes, each audited in the caller's transaction ---


@dataclass(frozen=True)
class TagChange:
    """What a change-tag request asks for; fields the request (or the settings) leave out are
    not touched. `expiration` is the raw body value, so the audit entry records it as sent."""

    change_expiration: bool = False
    expiration: Any = None
    immutable: bool | None = None
    manifest_digest: str | None = None


def _audit(
    session: Session,
    actor: Actor,
    kind: str,
    repository: Repository,
    name: str,
    **details: Any,
) -> None:
    performer = actor.auth.user
    metadata = {
        "username": performer.username if performer is not None else None,
        "repo": repository.name,
        "tag": name,
        **details,
    }
    log_action(
        session,
        kind,
        namespace=repository.namespace_user,
        auth=actor.auth,
        repository=repository,
        ip=actor.ip,
        metadata=metadata,
    )


def change_tag(
    session: Session, repository: Repository, name: str, change: TagChange, actor: Actor
) -> None:
    """Apply a change-tag request in Quay's order: expiration, immutability, then the move."""
    if change.change_expiration:
        _change_expiration(session, repository, name, change.expiration, actor)
    if change.immutable is not None:
        _change_immutability(session, repository, name, change.immutable, actor)
    if change.manifest_digest is not None:
        _move(session, repository, name, change.manifest_digest, actor)


def _change_expiration(
    session: Session, repository: Repository, name: str, raw: Any, actor: Actor
) -> None:
    expiration = float(raw) if raw is not None else None
    tag = _required_alive_tag(session, repository, name)
    if expiration is not None and expiration <= time.time():
        raise ModelError(PAST_EXPIRATION_TEXT)
    previous = change_expiration(session, tag, expiration)
    if previous is None and expiration is None:
        return
    _audit(
        session,
        actor,
        "change_tag_expiration",
        repository,
        name,
        namespace=repository.namespace_user.username,
        expiration_date=raw,
        old_expiration_date=previous,
    )


def _change_immutability(
    session: Session, repository: Repository, name: str, immutable: bool, actor: Actor
) -> None:
    """Anyone who may write may make a tag immutable; only admins may lift it."""
    tag = _required_alive_tag(session, repository, name)
    previous = bool(tag.immutable)
    if previous == immutable:
        return
    if previous and not permissions.can_admin_repository(session, actor.auth, repository):
        raise Forbidden("Unauthorized")
    if immutable and tag.lifetime_end_ms is not None:
        raise ModelError(
            f"Cannot make tag '{name}' immutable: tag has expiration set. "
            "Remove the expiration first."
        )
    tag.immutable = immutable
    _audit(
        session,
        actor,
        "change_tag_immutability",
        repository,
        name,
        namespace=repository.namespace_user.username,
        immutable=immutable,
        previous_immutable=previous,
    )


def _move(session: Session, repository: Repository, name: str, digest: str, actor: Actor) -> None:
    manifest = find_reachable_manifest(session, repository, digest)
    if manifest is None:
        raise NotFound()
    _tag, previous = retarget(session, repository, name, manifest)
    _audit(
        session,
        actor,
        "move_tag" if previous is not None else "create_tag",
        repository,
        name,
        namespace=repository.namespace_user.username,
        manifest_digest=manifest.digest,
        original_manifest_digest=previous.manifest.digest if previous else None,
    )


def delete_tag(session: Session, repository: Repository, name: str, actor: Actor) -> None:
    """Delete a tag: its alive row ends now and stays in the history."""
    tag = _required_alive_tag(session, repository, name)
    tags.delete_tag(session, repository.id, tag.name)
    _audit(
        session,
        actor,
        "delete_tag",
        repository,
        name,
        namespace=repository.namespace_user.username,
    )


def restore_tag(
    session: Session, repository: Repository, name: str, digest: str, actor: Actor
) -> None:
    """Point the tag back at a manifest from its history (a reversion row)."""
    manifest = _stored_manifest(session, repository, digest)
    retarget(session, repository, name, manifest, reversion=True, operation="restore")
    _audit(session, actor, "revert_tag", repository, name, manifest_digest=digest)


def remove_from_time_machine(
    session: Session,
    repository: Repository,
    name: str,
    *,
    digest: str | None,
    is_alive: bool,
    actor: Actor,
) -> None:
    """Take a history entry out of the namespace's time machine so GC may reclaim it."""
    manifest = _stored_manifest(session, repository, digest) if digest is not None else None
    changed = expire_from_time_machine(
        session,
        repository,
        name,
        manifest=manifest,
        is_alive=is_alive,
        window_s=repository.namespace_user.tag_expiration_s,
    )
    if not changed:
        raise NotFound()
    _audit(
        session,
        actor,
        "permanently_delete_tag",
        repository,
        name,
        namespace=repository.namespace_user.username,
        manifest_digest=digest,
    )
