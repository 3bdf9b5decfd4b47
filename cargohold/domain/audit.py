"""The audit-log writer. Every state-changing action goes through `log_action`."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy.orm import Session

from cargohold.auth.context import AuthContext
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import User
from cargohold.db.models.audit import LogEntry
from cargohold.db.models.registry import Repository


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
        metadata_json=json.dumps(metadata, default=str),
        datetime=when or utcnow(),
    )
    session.add(entry)
    return entry
