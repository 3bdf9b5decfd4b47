"""Tags with history: each name→manifest assignment is a row with a lifetime.

This package is the one home of the tag rules: this module holds the rows (set, delete, pull,
list) the registry and workers use; `history` holds the operations the API offers on a tag's
history (listing, moving, expiring, immutability, restore, time machine), with their audit.

Moving or deleting a tag ends the alive row (lifetime_end_ms = now) and, for a move, starts a
new one at the same instant. A row is alive while its end is unset or in the future. At most one
row per name has no end, which the partial unique index `ix_tag_alive` enforces; a push that
loses that race inserts nothing (ON CONFLICT DO NOTHING) and retries against the winner's row,
so concurrent pushes of one tag both succeed and leave one alive row.

Hidden rows (`$temp-<uuid>`) keep manifests pushed by digest reachable; they never appear in
listings and cannot be addressed by name.
"""

from __future__ import annotations

import functools
import re
import time
import uuid as uuid_module
from dataclasses import dataclass

from sqlalchemy import Insert, Select, Text, bindparam, func, literal, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter

from cargohold.db.base import begin_write, insert_unless_present, is_postgres
from cargohold.db.models.registry import Manifest, Repository, Tag
from cargohold.domain import repositories, tag_policies
from cargohold.domain.errors import Conflict, Invalid
from cargohold.domain.repositories import RepositoryRef

TAG_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
TEMP_TAG_PREFIX = "$temp-"
_RACE_RETRIES = 5


class TagError(Invalid):
    """A rule about tags was broken; the message is Quay's wording."""


class TagImmutable(Conflict):
    """An immutable tag may not be moved, restored, deleted or given an expiration."""

    def __init__(self, name: str, operation: str = "overwrite") -> None:
        super().__init__(f"Cannot {operation} immutable tag '{name}'")
        self.name = name


def now_ms() -> int:
    return int(time.time() * 1000)


def is_valid_tag_name(name: str) -> bool:
    return TAG_NAME_RE.match(name) is not None


def alive_at(now: int | BindParameter[int]):
    return or_(Tag.lifetime_end_ms.is_(None), Tag.lifetime_end_ms > now)


@dataclass(frozen=True)
class TaggedManifest:
    """What a pull by tag needs, fetched in one query."""

    repository_id: int
    manifest_id: int
    digest: str
    media_type: str
    manifest_bytes: bytes
    subject_digest: str | None


def has_history(session: Session, repository_id: int, name: str) -> bool:
    """Whether the name has (ended) visible rows: pulling it is TAG_EXPIRED, not unknown."""
    return (
        session.scalar(
            select(Tag.id)
            .where(Tag.repository_id == repository_id, Tag.name == name, Tag.hidden.is_(False))
            .limit(1)
        )
        is not None
    )


@functools.cache
def _alive_rows_statement(locking: bool) -> Select:
    # Built once: a tag push runs it, and building it costs more than running it.
    query = select(Tag).where(
        Tag.repository_id == bindparam("repository_id"),
        Tag.name == bindparam("name"),
        alive_at(bindparam("now")),
    )
    return query.with_for_update() if locking else query


def _alive_rows(session: Session, repository_id: int, name: str, now: int) -> list[Tag]:
    return list(
        session.scalars(
            _alive_rows_statement(is_postgres(session)),
            {"repository_id": repository_id, "name": name, "now": now},
        ).all()
    )


@functools.cache
def _insert_tag_statement(postgres: bool) -> Insert:
    return insert_unless_present(postgres, Tag).returning(Tag)


def set_tag(
    session: Session,
    repository_id: int,
    name: str,
    manifest_id: int,
    *,
    reversion: bool = False,
    end_ms: int | None = None,
    keep_same: bool = False,
    operation: str = "overwrite",
) -> tuple[Tag, Tag | None]:
    """Point `name` at a manifest: end the alive row, start a new one. Returns (new, previous).

    With `keep_same`, a tag that already points at the manifest (and does not expire) is
    left as it is: re-pushing an image adds no history. A name an immutability policy covers
    starts immutable and without expiration. `operation` names the change in the refusal
    an immutable tag gives. The caller commits.
    """
    begin_write(session)
    immutable = tag_policies.immutable_by_policy(session, repository_id, name)
    if immutable:
        end_ms = None
    for _ in range(_RACE_RETRIES):
        locked = _alive_rows(session, repository_id, name, now_ms())
        # Read the clock after the row locks: a row a concurrent push just ended is then no
        # longer alive and its end stays as that push wrote it.
        now = now_ms()
        alive = [row for row in locked if row.lifetime_end_ms is None or row.lifetime_end_ms > now]
        visible = [row for row in alive if not row.hidden]
        previous = max(visible, key=lambda row: row.lifetime_start_ms, default=None)
        if any(row.immutable for row in visible):
            raise TagImmutable(name, operation)
        if (
            keep_same
            and previous is not None
            and previous.manifest_id == manifest_id
            and previous.lifetime_end_ms is None
            and end_ms is None
            and not reversion
        ):
            return previous, previous
        for row in alive:
            row.lifetime_end_ms = now
        session.flush()
        tag = session.scalar(
            _insert_tag_statement(is_postgres(session)),
            {
                "repository_id": repository_id,
                "manifest_id": manifest_id,
                "name": name,
                "lifetime_start_ms": now,
                "lifetime_end_ms": end_ms,
                "hidden": False,
                "reversion": reversion,
                "immutable": immutable,
            },
        )
        # Nothing inserted: a concurrent push (PostgreSQL) committed an alive row first; this
        # push moves the tag on from that row, as if it had come second.
        if tag is not None:
            return tag, previous
    raise RuntimeError(f"Tag {name!r} kept moving under concurrent pushes")


def create_temp_tag(
    session: Session, repository_id: int, manifest_id: int, lifetime_s: int | None
) -> Tag:
    """A hidden row keeping a manifest reachable (for `lifetime_s`, or until removed)."""
    now = now_ms()
    tag = Tag(
        repository_id=repository_id,
        manifest_id=manifest_id,
        name=f"{TEMP_TAG_PREFIX}{uuid_module.uuid4()}",
        lifetime_start_ms=now,
        lifetime_end_ms=None if lifetime_s is None else now + lifetime_s * 1000,
        hidden=True,
        reversion=False,
        immutable=False,
    )
    session.add(tag)
    session.flush()
    return tag


def delete_tag(session: Session, repository_id: int, name: str) -> Tag | None:
    """End the alive row of a tag; the row stays in history. None when the tag is not alive."""
    begin_write(session)
    now = now_ms()
    visible = [row for row in _alive_rows(session, repository_id, name, now) if not row.hidden]
    if not visible:
        return None
    if any(row.immutable for row in visible):
        raise TagImmutable(name, "delete")
    for row in visible:
        row.lifetime_end_ms = now
    session.flush()
    return max(visible, key=lambda row: row.lifetime_start_ms)


def end_tags_for_manifest(session: Session, repository_id: int, manifest_id: int) -> list[Tag]:
    """End every alive row (visible or hidden) pointing at a manifest; returns those rows."""
    begin_write(session)
    now = now_ms()
    query = select(Tag).where(
        Tag.repository_id == repository_id, Tag.manifest_id == manifest_id, alive_at(now)
    )
    if is_postgres(session):
        query = query.with_for_update()
    rows = list(session.scalars(query).all())
    for row in rows:
        if row.immutable and not row.hidden:
            raise TagImmutable(row.name, "delete")
    for row in rows:
        row.lifetime_end_ms = now
    session.flush()
    return rows


def list_tag_names(
    session: Session, repository_id: int, *, limit: int | None, after: str | None = None
) -> tuple[list[str], bool]:
    """Alive visible tag names sorted by name, after `after`; (names, more exist).

    `limit` None lists them all."""
    values: dict[str, object] = {"repository_id": repository_id, "now": now_ms()}
    if after is not None:
        # Tag names hold no NUL, so the names after "x\0..." are those after "x"; PostgreSQL
        # cannot compare a NUL at all.
        values["after"] = after.split("\x00", 1)[0]
    if limit is not None:
        values["limit"] = limit + 1
    query = _tag_names_statement(paged=limit is not None, seek=after is not None)
    # Run as a Core statement: plain strings, without the ORM's per-row work (a listing may
    # hold tens of thousands of names).
    names = list(session.connection().execute(query, values).scalars())
    if limit is None:
        return names, False
    return names[:limit], len(names) > limit


def tag_names_json(session: Session, repository_id: int) -> str:
    """Every alive visible tag name of the repository, sorted, as a JSON array.

    The database builds the array: a listing of 10,000 names read row by row costs several
    times more, mostly because SQLite's driver lets go of the GIL at every row, so the
    threads of a busy process take turns at each one."""
    statement = _tag_names_array_statement(is_postgres(session))
    return (
        session.connection()
        .execute(statement, {"repository_id": repository_id, "now": now_ms()})
        .scalar_one()
    )


@functools.cache
def _tag_names_array_statement(postgres: bool) -> Select:
    names = _tag_names_statement(paged=False, seek=False)
    if postgres:
        ordered = aggregate_order_by(Tag.name, Tag.name)
        array = func.json_agg(ordered).cast(Text)
        return names.with_only_columns(func.coalesce(array, literal("[]"))).order_by(None)
    # SQLite keeps a FROM-subquery's ORDER BY when the outer query aggregates with anything
    # but count(), min() or max(), so the array comes in name order.
    ordered_names = names.subquery()
    return select(func.json_group_array(ordered_names.c.name))


@functools.cache
def _tag_names_statement(*, paged: bool, seek: bool) -> Select:
    """Alive visible names in order: a range of the (repository, name) index from `after`
    when `seek`, at most `limit` of them when `paged`. Built once per shape."""
    query = select(Tag.name).where(
        Tag.repository_id == bindparam("repository_id"),
        Tag.hidden.is_(False),
        alive_at(bindparam("now")),
    )
    if seek:
        query = query.where(Tag.name > bindparam("after"))
    query = query.order_by(Tag.name)
    return query.limit(bindparam("limit")) if paged else query


# `hidden IS 0` would let SQLite's planner read the tag by the history index (repository,
# hidden, start), which walks every tag of the repository to save a sort of one row; written
# this way only the (repository, name) index fits, and a pull of one tag of 10,000 stays a seek.
_NOT_HIDDEN_BY_NAME = Tag.hidden.is_not(True)


def alive_tag_digest(session: Session, repository_id: int, name: str, now: int) -> str | None:
    """The digest the visible tag `name` points at now, or None."""
    return session.scalar(
        select(Manifest.digest)
        .join(Tag, Tag.manifest_id == Manifest.id)
        .where(
            Tag.repository_id == repository_id,
            Tag.name == name,
            _NOT_HIDDEN_BY_NAME,
            alive_at(now),
        )
        .order_by(Tag.lifetime_start_ms.desc())
        .limit(1)
    )


@functools.cache
def _pull_by_tag_statement() -> Select:
    # Built once (a pull's setup cost more than its query); the values are bound per call.
    alive_tag = (
        select(Tag.manifest_id)
        .where(
            Tag.repository_id == Repository.id,
            Tag.name == bindparam("tag"),
            _NOT_HIDDEN_BY_NAME,
            alive_at(bindparam("now")),
        )
        .order_by(Tag.lifetime_start_ms.desc())
        .limit(1)
        .correlate(Repository)
        .scalar_subquery()
    )
    return repositories.repository_joined_statement(
        Manifest,
        Manifest.id == alive_tag,
        Manifest.id,
        Manifest.digest,
        Manifest.media_type,
        Manifest.manifest_bytes,
        Manifest.subject_digest,
    )


def pull_by_tag(
    session: Session, namespace_name: str, repository_name: str, name: str, now: int
) -> tuple[RepositoryRef | None, TaggedManifest | None]:
    """The repository and the manifest its alive tag points at, in one query."""
    row = session.execute(
        _pull_by_tag_statement(),
        {"namespace": namespace_name, "repository": repository_name, "tag": name, "now": now},
    ).first()
    ref, manifest = repositories.split_joined_row(row)
    if ref is None or manifest is None:
        return ref, None
    return ref, TaggedManifest(ref.id, *manifest)
