"""Audit log entries as Quay shows them: in the log listings and in export files alike."""

from __future__ import annotations

from typing import Any

from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.models.audit import LogEntry
from cargohold.db.session import DbSession
from cargohold.domain import audit, log_export
from cargohold.domain.avatars import user_avatar
from cargohold.domain.dates import format_date


def account_view(settings: Settings, account: User) -> dict[str, Any]:
    return {
        "kind": "user",
        "name": account.username,
        "is_robot": account.robot,
        "avatar": user_avatar(settings, account),
    }


def namespace_view(settings: Settings, account: User) -> dict[str, Any]:
    kind = "org" if account.organization else "user"
    return {
        "kind": kind,
        "name": account.username,
        "avatar": user_avatar(settings, account, kind),
    }


def entry_view(
    settings: Settings, entry: LogEntry, known: dict[int, User], with_namespace: bool
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "kind": entry.kind,
        "metadata": audit.entry_metadata(entry),
        "ip": entry.ip,
        "datetime": format_date(entry.datetime),
    }
    performer = known.get(entry.performer_id) if entry.performer_id is not None else None
    if performer is not None:
        view["performer"] = account_view(settings, performer)
    if with_namespace and entry.account_id is not None:
        namespace = known.get(entry.account_id)
        if namespace is not None:
            view["namespace"] = namespace_view(settings, namespace)
    return view


def export_renderer(settings: Settings) -> log_export.EntryRenderer:
    """Entries in an export file look as in the listings, without the namespace."""

    def render(db: DbSession, entries: list[LogEntry]) -> list[dict[str, Any]]:
        ids = {entry.performer_id for entry in entries if entry.performer_id is not None}
        known = audit.accounts_by_id(db, ids)
        return [entry_view(settings, entry, known, False) for entry in entries]

    return render
