"""Audit log listings for a user, an organization, a repository and the whole installation.

Every listing takes Quay's `starttime`/`endtime` window (MM/DD/YYYY, UTC, end day included),
shows 20 entries per page newest first and hands out an opaque `next_page` cursor.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from cargohold.api.deps import AuthDep, DbDep, SettingsDep, require_fresh_login, require_user
from cargohold.api.errors import BAD_REQUEST_TEXT, MessageError, not_found, unauthorized
from cargohold.api.repo_access import require_repository
from cargohold.api.routing import ApiRouter
from cargohold.api.superuser_access import require_superuser_feature, require_superuser_reader
from cargohold.auth.context import AuthContext
from cargohold.config import Settings
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import User
from cargohold.db.models.registry import Role
from cargohold.db.session import DbSession
from cargohold.domain import accounts, audit, log_entries, permissions
from cargohold.domain.dates import format_date
from cargohold.paging import decode_page_token, encode_page_token

router = ApiRouter(tags=["logs"])

PAGE_SIZE = 20
MAX_AGGREGATE_WINDOW = dt.timedelta(days=32)
ONE_DAY = dt.timedelta(days=1)


def _parse_day(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.strptime(value, "%m/%d/%Y").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def log_window(request: Request) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) as Quay computes it: defaults of the last day, the end day included."""
    now = utcnow()
    start = _parse_day(request.query_params.get("starttime")) or now - ONE_DAY
    try:
        end = (_parse_day(request.query_params.get("endtime")) or now) + ONE_DAY
    except OverflowError as exc:  # the last day of the calendar has no next day
        raise MessageError(400, BAD_REQUEST_TEXT) from exc
    if end < start:
        raise MessageError(400, BAD_REQUEST_TEXT)
    return start, end


def _performer_id(db: DbSession, request: Request) -> int | None | bool:
    """The `performer` filter: an account id, None for no filter, False for an unknown name."""
    name = request.query_params.get("performer")
    if not name:
        return None
    account = accounts.get_account(db, name)
    return account.id if account is not None else False


def _cursor(settings: Settings, token: str | None) -> tuple[dt.datetime, int] | None:
    position = decode_page_token(settings, token) or {}
    when, entry_id = position.get("log_datetime"), position.get("log_id")
    if not isinstance(when, str) or not isinstance(entry_id, int):
        return None
    try:
        return dt.datetime.fromisoformat(when), entry_id
    except ValueError:
        return None


def _window_body(start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    return {"start_time": format_date(start), "end_time": format_date(end)}


@dataclass(frozen=True)
class _Scope:
    """Which entries a log endpoint reads; `with_performer_filter` honours `?performer=`."""

    account_id: int | None = None
    repository_id: int | None = None
    exclude_kinds: tuple[str, ...] = ()
    with_performer_filter: bool = False


def _log_filter(
    request: Request, db: DbSession, start: dt.datetime, end: dt.datetime, scope: _Scope
) -> audit.LogFilter | None:
    """The filter of a read; None when the performer asked for does not exist."""
    performer_id = _performer_id(db, request) if scope.with_performer_filter else None
    if performer_id is False:
        return None
    return audit.LogFilter(
        start=start,
        end=end,
        account_id=scope.account_id,
        repository_id=scope.repository_id,
        performer_id=performer_id or None,
        exclude_kinds=scope.exclude_kinds,
    )


def _list(
    request: Request,
    db: DbSession,
    settings: Settings,
    scope: _Scope,
    *,
    with_namespace: bool = False,
) -> dict[str, Any]:
    start, end = log_window(request)
    body = _window_body(start, end)
    log_filter = _log_filter(request, db, start, end, scope)
    if log_filter is None:
        return {**body, "logs": []}
    before = _cursor(settings, request.query_params.get("next_page"))
    entries = audit.list_entries(db, log_filter, before=before, limit=PAGE_SIZE + 1)
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    ids = {entry.performer_id for entry in entries if entry.performer_id is not None}
    if with_namespace:
        ids |= {entry.account_id for entry in entries if entry.account_id is not None}
    known = audit.accounts_by_id(db, ids)
    body["logs"] = [
        log_entries.entry_view(settings, entry, known, with_namespace) for entry in entries
    ]
    if more:
        last = entries[-1]
        body["next_page"] = encode_page_token(
            settings, {"log_datetime": last.datetime.isoformat(), "log_id": last.id}
        )
    return body


def _aggregate(request: Request, db: DbSession, scope: _Scope) -> dict[str, Any]:
    start, end = log_window(request)
    if end - start > MAX_AGGREGATE_WINDOW:
        raise MessageError(400, "Invalid date range for logs")
    log_filter = _log_filter(request, db, start, end, scope)
    if log_filter is None:
        return {"aggregated": []}
    return {
        "aggregated": [
            {
                "kind": kind,
                "count": count,
                "datetime": format_date(dt.datetime.combine(day, dt.time(), dt.UTC)),
            }
            for kind, day, count in audit.aggregate_entries(db, log_filter)
        ]
    }


# The caller's own namespace.


def _user_scope(user: User) -> _Scope:
    """The caller's own namespace, without its service-key entries."""
    return _Scope(
        account_id=user.id, exclude_kinds=audit.SERVICE_KEY_KINDS, with_performer_filter=True
    )


def user_admin(auth: AuthContext) -> User:
    user = require_user(auth)
    if not auth.can_admin_self():
        raise unauthorized(auth)
    return user


@router.get("/api/v1/user/logs", operation_id="listUserLogs")
def list_user_logs(
    request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    """Entries of the caller's namespace (service-key entries left out)."""
    user = user_admin(auth)
    return _list(request, db, settings, _user_scope(user))


@router.get("/api/v1/user/aggregatelogs", operation_id="getAggregateUserLogs")
def aggregate_user_logs(request: Request, db: DbDep, auth: AuthDep) -> dict[str, Any]:
    user = user_admin(auth)
    return _aggregate(request, db, _user_scope(user))


# Organizations (any namespace the caller administers).


def administered_namespace(
    db: DbSession, auth: AuthContext, orgname: str, *, superuser_read: bool = True
) -> User:
    """The organization (or user namespace) the caller administers; `superuser_read` admits
    global read-only superusers too."""
    namespace = accounts.get_namespace(db, orgname)
    if superuser_read and auth.is_global_readonly_superuser:
        if namespace is None:
            raise not_found()
        return namespace
    if namespace is None:
        if auth.has_superuser_full_access:
            raise not_found()
        raise unauthorized(auth)
    if not permissions.can_admin_organization(db, auth, namespace):
        raise unauthorized(auth)
    return namespace


@router.get("/api/v1/organization/{orgname}/logs", operation_id="listOrgLogs")
def list_org_logs(
    orgname: str, request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    """Entries of an organization, its repositories included."""
    namespace = administered_namespace(db, auth, orgname)
    return _list(request, db, settings, _Scope(account_id=namespace.id, with_performer_filter=True))


@router.get("/api/v1/organization/{orgname}/aggregatelogs", operation_id="getAggregateOrgLogs")
def aggregate_org_logs(orgname: str, request: Request, db: DbDep, auth: AuthDep) -> dict[str, Any]:
    namespace = administered_namespace(db, auth, orgname)
    return _aggregate(request, db, _Scope(account_id=namespace.id, with_performer_filter=True))


# Repositories.


@router.get("/api/v1/repository/{repository:repopath}/logs", operation_id="listRepoLogs")
def list_repo_logs(
    repository: str, request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    """Entries about one repository (repository admins, read-only superusers)."""
    repo = require_repository(db, auth, repository, Role.admin, superuser_read=True)
    return _list(request, db, settings, _Scope(repository_id=repo.id))


@router.get(
    "/api/v1/repository/{repository:repopath}/aggregatelogs", operation_id="getAggregateRepoLogs"
)
def aggregate_repo_logs(
    repository: str, request: Request, db: DbDep, auth: AuthDep
) -> dict[str, Any]:
    repo = require_repository(db, auth, repository, Role.admin, superuser_read=True)
    return _aggregate(request, db, _Scope(repository_id=repo.id))


# The whole installation.


def _require_installation_reader(settings: Settings, auth: AuthContext) -> None:
    """Installation-wide logs: superusers who may read everything, freshly signed in."""
    require_superuser_feature(settings)
    require_fresh_login(auth, settings)
    require_superuser_reader(auth)


@router.get("/api/v1/superuser/logs", operation_id="listAllLogs")
def list_all_logs(
    request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    """Every entry, each with its namespace."""
    _require_installation_reader(settings, auth)
    return _list(request, db, settings, _Scope(), with_namespace=True)


@router.get("/api/v1/superuser/aggregatelogs", operation_id="getAllAggregateLogs")
def aggregate_all_logs(
    request: Request, db: DbDep, settings: SettingsDep, auth: AuthDep
) -> dict[str, Any]:
    _require_installation_reader(settings, auth)
    return _aggregate(request, db, _Scope())
