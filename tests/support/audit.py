"""Reading the audit log straight from a live server's database."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from cargohold.db.models.accounts import User
from cargohold.db.models.audit import LogEntry
from tests.support.server import LiveServer

# Keys every entry of a token-authenticated call carries, and the request id every entry carries.
OAUTH_KEYS = (
    "oauth_token_id",
    "oauth_token_application_id",
    "oauth_token_application",
    "request_id",
)


def log_entries(
    server: LiveServer, namespace: str, kind: str, *, keep_oauth: bool = False
) -> list[dict[str, Any]]:
    """Metadata of every `kind` entry written in the namespace named `namespace`, oldest first.

    The OAuth token keys added for token-authenticated calls are left out unless asked for.
    """
    with server.db() as session:
        account_id = session.scalar(select(User.id).where(User.username == namespace))
        rows = session.scalars(
            select(LogEntry)
            .where(LogEntry.account_id == account_id, LogEntry.kind == kind)
            .order_by(LogEntry.id)
        ).all()
        entries = [json.loads(row.metadata_json) for row in rows]
    if not keep_oauth:
        for entry in entries:
            for key in OAUTH_KEYS:
                entry.pop(key, None)
    return entries
