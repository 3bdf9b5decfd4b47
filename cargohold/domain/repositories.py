"""Repositories: names, creation, visibility, state, deletion, stars and list queries."""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, delete, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.sql.elements import BindParameter

from cargohold.auth.context import AuthContext
from cargohold.db.base import begin_write, utcnow
from cargohold.db.models.accounts import Team, TeamMember, TeamRole, User
from cargohold.db.models.audit import LogEntry
from cargohold.db.models.registry import (
    Repository,
    RepositoryPermission,
    RepositoryState,
    Role,
    Star,
    Tag,
)
from cargohold.domain import quota
from cargohold.domain.audit import log_repository_action
from cargohold.domain.errors import Invalid
from cargohold.domain.prototypes import apply_prototypes

MAX_NAME_LENGTH = 255
_COMPONENT_RE = re.compile(r"^[a-z0-9][.a-z0-9_-]*$")
REPOSITORY_KINDS = ("image",)
STATE_NAMES = {state: state.name for state in RepositoryState}
# Counted toward popularity: the actions logged against a repository in this many days.
POPULARITY_DAYS = 30
STATS_DAYS = 92


class RepositoryError(Invalid):
    """A repository rule was broken; the message is Quay's wording."""


def valid_repository_name(name: str, extended: bool) -> bool:
    if not name or len(name) > MAX_NAME_LENGTH:
        return False
    components = name.split("/") if extended else [name]
    return all(_COMPONENT_RE.match(component) for component in components)


def split_repository_path(path: str) -> tuple[str, str] | None:
    """`ns/name[/more]` → (ns, name); None when there is no repository part."""
    namespace, _, name = path.strip("/").partition("/")
    if not namespace or not name:
        return None
    return namespace, name


def find_repository(session: Session, namespace_name: str, name: str) -> Repository | None:
    """A live repository by namespace and name (deleted ones and deleted namespaces are gone)."""
    return session.scalar(
        select(Repository)
        .join(User, User.id == Repository.namespace_user_id)
        .options(joinedload(Repository.namespace_user))
        .where(
            User.username == namespace_name,
            User.deleted.is_(False),
            Repository.name == name,
            Repository.deleted.is_(False),
        )
    )


def create_repository(
    session: Session,
    namespace: User,
    name: str,
    *,
    public: bool,
    description: str | None,
    creator: User | None,
    kind: str = "image",
) -> Repository:
    """A new repository; a creating user or robot becomes an explicit admin of it, and the
    organization's default permissions are granted."""
    if find_repository(session, namespace.username, name) is not None:
        raise RepositoryError("Repository already exists")
    repository = Repository(
        namespace_user_id=namespace.id,
        name=name,
        public=public,
        description=description,
        kind=kind,
        state=RepositoryState.NORMAL,
    )
    repository.namespace_user = namespace
    session.add(repository)
    session.flush()
    if creator is not None and not creator.organization:
        session.add(
            RepositoryPermission(repository_id=repository.id, user_id=creator.id, role=Role.admin)
        )
        session.flush()
    apply_prototypes(session, repository, creator)
    return repository


def mark_deleted(session: Session, repository: Repository) -> None:
    """Hide the repository everywhere at once and free its name; GC reclaims the content."""
    session.execute(delete(Star).where(Star.repository_id == repository.id))
    repository.deleted = True
    repository.name = f"deleted-{uuid.uuid4()}"
    repository.last_modified = utcnow()
    quota.record_repository_deleted(session, repository.namespace_user_id)


def set_state(repository: Repository, state: RepositoryState) -> None:
    repository.state = state
    repository.last_modified = utcnow()


# --- the repository endpoints' changes, each with its audit entry ---------------------------


def _log(
    session: Session,
    kind: str,
    repository: Repository,
    auth: AuthContext,
    ip: str | None,
    *,
    linked: bool = True,
    **extra: object,
) -> None:
    entry = {
        "repo": repository.name,
        "namespace": repository.namespace_user.username,
        **extra,
    }
    log_repository_action(
        session, kind, repository, auth=auth, ip=ip, metadata=entry, linked=linked
    )


def create_requested(
    session: Session,
    namespace: User,
    name: str,
    *,
    public: bool,
    description: str | None,
    extended_names: bool,
    auth: AuthContext,
    ip: str | None,
) -> Repository:
    """createRepo: a free, well-formed name becomes a repository the caller created."""
    if find_repository(session, namespace.username, name) is not None:
        raise RepositoryError("Repository already exists")
    if not valid_repository_name(name, extended_names):
        raise RepositoryError("Invalid repository name")
    repository = create_repository(
        session, namespace, name, public=public, description=description, creator=auth.user
    )
    _log(session, "create_repo", repository, auth, ip)
    return repository


def change_visibility(
    session: Session, repository: Repository, visibility: str, *, auth: AuthContext, ip: str | None
) -> None:
    repository.public = visibility == "public"
    _log(session, "change_repo_visibility", repository, auth, ip, visibility=visibility)


def change_state(
    session: Session,
    repository: Repository,
    state: RepositoryState,
    *,
    auth: AuthContext,
    ip: str | None,
) -> None:
    set_state(repository, state)
    _log(session, "change_repo_state", repository, auth, ip, state_changed=state.name)


def set_description(
    session: Session, repository: Repository, description: str, *, auth: AuthContext, ip: str | None
) -> None:
    repository.description = description
    _log(session, "set_repo_description", repository, auth, ip, description=description)


def delete_requested(
    session: Session, repository: Repository, *, auth: AuthContext, ip: str | None
) -> None:
    """deleteRepository: the entry names the repository before its name is freed."""
    _log(session, "delete_repo", repository, auth, ip, linked=False)
    mark_deleted(session, repository)


def in_namespace(
    query: Select[tuple[Repository]], namespace_name: str
) -> Select[tuple[Repository]]:
    """A repository listing narrowed to one namespace."""
    return query.where(Repository.namespace_user.has(username=namespace_name))


def state_name(repository: Repository) -> str:
    return RepositoryState(repository.state).name


def visible_repositories(
    user: User | None, *, include_public: bool, see_everything: bool
) -> Select[tuple[Repository]]:
    """Repositories a caller may list: public ones (when asked), direct and team grants, and
    every repository of organizations where the caller is in an admin team."""
    query = (
        select(Repository)
        .join(User, User.id == Repository.namespace_user_id)
        .options(joinedload(Repository.namespace_user))
    )
    return query.where(
        *_visible_clauses(user, include_public=include_public, see_everything=see_everything)
    )


def visible_names_page(
    session: Session,
    user: User | None,
    *,
    include_public: bool,
    see_everything: bool,
    start_id: int,
    page_size: int,
) -> tuple[list[str], int | None]:
    """One page of visible "namespace/name" strings ordered by id, from narrow rows, and the
    id the next page starts at (None on the last page)."""
    rows = session.execute(
        select(Repository.id, User.username, Repository.name)
        .join(User, User.id == Repository.namespace_user_id)
        .where(
            *_visible_clauses(user, include_public=include_public, see_everything=see_everything),
            Repository.id >= start_id,
        )
        .order_by(Repository.id)
        .limit(page_size + 1)
    ).all()
    names = [f"{namespace}/{name}" for _, namespace, name in rows[:page_size]]
    return names, rows[page_size][0] if len(rows) > page_size else None


def _visible_clauses(user: User | None, *, include_public: bool, see_everything: bool) -> list:
    clauses = [Repository.deleted.is_(False), User.deleted.is_(False)]
    if see_everything:
        return clauses
    branches = []
    if include_public:
        branches.append(Repository.public.is_(True))
    if user is not None:
        branches.append(
            Repository.id.in_(
                select(RepositoryPermission.repository_id).where(
                    RepositoryPermission.user_id == user.id
                )
            )
        )
        branches.append(
            Repository.id.in_(
                select(RepositoryPermission.repository_id)
                .join(TeamMember, TeamMember.team_id == RepositoryPermission.team_id)
                .where(TeamMember.user_id == user.id)
            )
        )
        branches.append(
            Repository.namespace_user_id.in_(
                select(Team.organization_id)
                .join(TeamMember, TeamMember.team_id == Team.id)
                .where(TeamMember.user_id == user.id, Team.role == TeamRole.admin)
            )
        )
    clauses.append(or_(*branches) if branches else false())
    return clauses


def page_by_id(
    session: Session, query: Select[tuple[Repository]], start_id: int, page_size: int
) -> tuple[Sequence[Repository], int | None]:
    """One page ordered by id, and the id the next page starts at (None on the last page)."""
    rows = session.scalars(
        query.where(Repository.id >= start_id).order_by(Repository.id).limit(page_size + 1)
    ).all()
    if len(rows) > page_size:
        return rows[:page_size], rows[page_size].id
    return rows, None


def last_modified_ms(session: Session, repository_ids: Sequence[int]) -> dict[int, int]:
    """The start of each repository's most recent alive visible tag, in milliseconds."""
    if not repository_ids:
        return {}
    now_ms = int(utcnow().timestamp() * 1000)
    rows = session.execute(
        select(Tag.repository_id, func.max(Tag.lifetime_start_ms))
        .where(
            Tag.repository_id.in_(repository_ids),
            Tag.hidden.is_(False),
            or_(Tag.lifetime_end_ms.is_(None), Tag.lifetime_end_ms > now_ms),
        )
        .group_by(Tag.repository_id)
    ).all()
    return {repository_id: start for repository_id, start in rows}


def popularity(session: Session, repository_ids: Sequence[int]) -> dict[int, float]:
    """How many actions were logged against each repository recently."""
    if not repository_ids:
        return {}
    since = utcnow() - dt.timedelta(days=POPULARITY_DAYS)
    rows = session.execute(
        select(LogEntry.repository_id, func.count())
        .where(LogEntry.repository_id.in_(repository_ids), LogEntry.datetime >= since)
        .group_by(LogEntry.repository_id)
    ).all()
    return {repository_id: float(count) for repository_id, count in rows}


def daily_action_counts(session: Session, repository: Repository) -> list[dict[str, object]]:
    """Actions per day over the last STATS_DAYS days, days without actions included as 0."""
    today = utcnow().date()
    first = today - dt.timedelta(days=STATS_DAYS - 1)
    since = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    counts: dict[dt.date, int] = {}
    for (when,) in session.execute(
        select(LogEntry.datetime).where(
            LogEntry.repository_id == repository.id, LogEntry.datetime >= since
        )
    ):
        counts[when.date()] = counts.get(when.date(), 0) + 1
    return [
        {
            "date": (first + dt.timedelta(days=n)).isoformat(),
            "count": counts.get(first + dt.timedelta(days=n), 0),
        }
        for n in range(STATS_DAYS)
    ]


def starred_ids(session: Session, user: User | None, repository_ids: Sequence[int]) -> set[int]:
    if user is None or not repository_ids:
        return set()
    return set(
        session.scalars(
            select(Star.repository_id).where(
                Star.user_id == user.id, Star.repository_id.in_(repository_ids)
            )
        )
    )


def star(session: Session, user: User, repository: Repository) -> None:
    """Starring twice is a no-op."""
    exists = session.scalar(
        select(Star.id).where(Star.user_id == user.id, Star.repository_id == repository.id)
    )
    if exists is None:
        session.add(Star(user_id=user.id, repository_id=repository.id))


def unstar(session: Session, user: User, repository: Repository) -> None:
    session.execute(
        delete(Star).where(Star.user_id == user.id, Star.repository_id == repository.id)
    )


def starred_by(query: Select[tuple[Repository]], user: User) -> Select[tuple[Repository]]:
    """Narrow a repository query to those the user starred."""
    return query.where(Repository.id.in_(select(Star.repository_id).where(Star.user_id == user.id)))


def find_or_create_repository(
    session: Session, namespace: User, name: str, *, public: bool, creator: User | None
) -> Repository:
    """The repository, created when missing (a push to a new name); concurrent pushes share it."""
    begin_write(session)
    existing = find_repository(session, namespace.username, name)
    if existing is not None:
        return existing
    try:
        with session.begin_nested():
            return create_repository(
                session, namespace, name, public=public, description=None, creator=creator
            )
    except (IntegrityError, RepositoryError):
        # A concurrent push created it first (seen at insert, or already committed).
        existing = find_repository(session, namespace.username, name)
        if existing is None:
            raise
        return existing


@dataclass(frozen=True)
class RepositoryRef:
    """The few columns the registry's request path needs, without loading ORM objects."""

    id: int
    namespace_id: int
    public: bool
    state: int
    kind: str
    # A disabled namespace's usage is not accounted (quota).
    namespace_enabled: bool


def repository_ref_columns():
    return (
        Repository.id,
        Repository.namespace_user_id,
        Repository.public,
        Repository.state,
        Repository.kind,
        User.enabled,
    )


def live_repository_clause(namespace_name: str | BindParameter, name: str | BindParameter):
    return (
        User.username == namespace_name,
        User.deleted.is_(False),
        Repository.name == name,
        Repository.deleted.is_(False),
    )


@functools.cache
def _repository_ref_statement() -> Select:
    # Built once: constructing a statement costs more than running it on a small lookup.
    return (
        select(*repository_ref_columns())
        .join(User, User.id == Repository.namespace_user_id)
        .where(*live_repository_clause(bindparam("namespace"), bindparam("repository")))
    )


def repository_joined_statement(joined: Any, on: Any, *columns: Any) -> Select:
    """The live repository named by the bound `namespace` and `repository`, with `columns` of
    a row outer-joined to it: a pull reads both in one round trip. Callers build it once."""
    return (
        select(*repository_ref_columns(), *columns)
        .select_from(Repository)
        .join(User, User.id == Repository.namespace_user_id)
        .outerjoin(joined, on)
        .where(*live_repository_clause(bindparam("namespace"), bindparam("repository")))
    )


def split_joined_row(row: Any) -> tuple[RepositoryRef | None, tuple[Any, ...] | None]:
    """A repository_joined_statement row: the repository (None when there is none) and the
    joined columns (None when no row joined)."""
    if row is None:
        return None, None
    width = len(repository_ref_columns())
    joined = tuple(row[width:])
    return RepositoryRef(*row[:width]), None if joined[0] is None else joined


def find_repository_ref(session: Session, namespace_name: str, name: str) -> RepositoryRef | None:
    # Through the connection: the Session's ORM execution path costs more than the query.
    row = (
        session.connection()
        .execute(_repository_ref_statement(), {"namespace": namespace_name, "repository": name})
        .first()
    )
    return None if row is None else RepositoryRef(*row)
