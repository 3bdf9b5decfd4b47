"""The audit-log writer. Every state-changing action goes through `log_action`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, insert, or_, select
from sqlalchemy.orm import Session

from cargohold.auth.context import AuthContext
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import User
from cargohold.db.models.audit import LogEntry
from cargohold.db.models.registry import Repository
from cargohold.request_log import with_request_id


def log_action(
    session: Session,
    kind: str,
    *,
    namespace: User | None,
    performer: User | None = None,
    auth: AuthContext | None = None,
    repository: Repository | None = None,
    ip: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> LogEntry:
    """Record one action in the caller's transaction, so the log and the change commit together."""
    data = dict(metadata or {})
    if auth is not None:
        performer = performer or auth.user
        token = auth.oauth_token
        if token is not None:
            data["oauth_token_id"] = token.id
            if token.application is not None:
                data["oauth_token_application_id"] = token.application.client_id
                data["oauth_token_application"] = token.application.name
    return log_action_by_ids(
        session,
        kind,
        namespace_id=namespace.id if namespace is not None else None,
        performer_id=performer.id if performer is not None else None,
        repository_id=repository.id if repository is not None else None,
        ip=ip,
        metadata=data,
    )


def log_repository_action(
    session: Session,
    kind: str,
    repository: Repository,
    *,
    auth: AuthContext | None,
    ip: str | None,
    metadata: dict[str, Any],
    linked: bool = True,
) -> LogEntry:
    """An entry about one repository in its namespace's log; `linked=False` leaves the entry
    unattached to a repository that is being deleted."""
    return log_action(
        session,
        kind,
        namespace=repository.namespace_user,
        auth=auth,
        repository=repository if linked else None,
        ip=ip,
        metadata=metadata,
    )


def log_action_by_ids(
    session: Session,
    kind: str,
    *,
    namespace_id: int | None,
    performer_id: int | None,
    repository_id: int | None,
    ip: str | None,
    metadata: dict[str, Any],
    when: dt.datetime | None = None,
) -> LogEntry:
    """The same record from plain ids, for writers that batch entries (registry pulls)."""
    entry = LogEntry(
        kind=kind,
        account_id=namespace_id,
        performer_id=performer_id,
        repository_id=repository_id,
        ip=ip,
        metadata_json=json.dumps(with_request_id(metadata), default=str),
        datetime=when or utcnow(),
    )
    session.add(entry)
    return entry


@dataclass(frozen=True)
class ActionByIds:
    """One entry of a batch for log_actions_by_ids."""

    namespace_id: int | None
    performer_id: int | None
    repository_id: int | None
    ip: str | None
    metadata: dict[str, Any]
    when: dt.datetime


def log_actions_by_ids(session: Session, kind: str, actions: Iterable[ActionByIds]) -> None:
    """Record many actions of one kind in one INSERT: a second's pulls are thousands of
    entries, and an ORM object for each held the interpreter longer than the pulls did."""
    rows = [
        {
            "kind": kind,
            "account_id": action.namespace_id,
            "performer_id": action.performer_id,
            "repository_id": action.repository_id,
            "ip": action.ip,
            "metadata_json": json.dumps(with_request_id(action.metadata), default=str),
            "datetime": action.when,
        }
        for action in actions
    ]
    if rows:
        session.execute(insert(LogEntry), rows)


# Service-key entries belong to the installation, not to a user's own history.
SERVICE_KEY_KINDS = (
    "service_key_create",
    "service_key_approve",
    "service_key_delete",
    "service_key_modify",
    "service_key_extend",
    "service_key_rotate",
)


@dataclass
class LogFilter:
    """Which entries a log listing shows: a window plus optional namespace/repository/performer."""

    start: dt.datetime
    end: dt.datetime
    account_id: int | None = None
    repository_id: int | None = None
    performer_id: int | None = None
    exclude_kinds: tuple[str, ...] = ()

    def apply(self, query: Select) -> Select:
        query = query.where(LogEntry.datetime >= self.start, LogEntry.datetime < self.end)
        if self.account_id is not None:
            query = query.where(LogEntry.account_id == self.account_id)
        if self.repository_id is not None:
            query = query.where(LogEntry.repository_id == self.repository_id)
        if self.performer_id is not None:
            query = query.where(LogEntry.performer_id == self.performer_id)
        if self.exclude_kinds:
            query = query.where(LogEntry.kind.not_in(self.exclude_kinds))
        return query


def list_entries(
    session: Session,
    log_filter: LogFilter,
    *,
    before: tuple[dt.datetime, int] | None,
    limit: int,
) -> list[LogEntry]:
    """Newest first; `before` is the (datetime, id) of the last entry already shown."""
    query = log_filter.apply(select(LogEntry))
    if before is not None:
        when, entry_id = before
        query = query.where(
            or_(
                LogEntry.datetime < when,
                and_(LogEntry.datetime == when, LogEntry.id < entry_id),
            )
        )
    query = query.order_by(LogEntry.datetime.desc(), LogEntry.id.desc()).limit(limit)
    return list(session.scalars(query).all())


def accounts_by_id(session: Session, ids: set[int]) -> dict[int, User]:
    """Performers and namespaces of a page of entries, in one query."""
    if not ids:
        return {}
    return {user.id: user for user in session.scalars(select(User).where(User.id.in_(ids)))}


def aggregate_entries(session: Session, log_filter: LogFilter) -> list[tuple[str, dt.date, int]]:
    """(kind, day, count) for every kind and UTC day with entries in the window."""
    day = func.date(LogEntry.datetime)
    query = log_filter.apply(
        select(LogEntry.kind, day, func.count()).group_by(LogEntry.kind, day)
    ).order_by(day, LogEntry.kind)
    result = []
    for kind, value, count in session.execute(query).all():
        when = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        result.append((kind, when, int(count)))
    return result


def entry_metadata(entry: LogEntry) -> dict[str, Any]:
    try:
        value = json.loads(entry.metadata_json or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
