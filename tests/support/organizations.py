"""Organization helpers for tests: reading the audit log and team membership from the DB."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import aliased

from cargohold.db.models.accounts import Team, TeamMember, User
from cargohold.db.models.audit import LogEntry
from tests.support.server import LiveServer


def log_entries(server: LiveServer, kind: str, namespace: str | None = None) -> list[dict]:
    """Metadata of every audit entry of `kind` (for the namespace, when given).

    The `oauth_token_*` keys every token-authenticated action carries are left out.
    """
    with server.db() as session:
        query = select(LogEntry).where(LogEntry.kind == kind).order_by(LogEntry.id)
        if namespace is not None:
            owner = session.scalar(select(User.id).where(User.username == namespace))
            query = query.where(LogEntry.account_id == owner)
        return [
            {
                k: v
                for k, v in json.loads(entry.metadata_json).items()
                if not k.startswith("oauth_") and k != "request_id"
            }
            for entry in session.scalars(query)
        ]


def team_members(server: LiveServer, org: str, team: str) -> list[str]:
    organization = aliased(User)
    with server.db() as session:
        return list(
            session.scalars(
                select(User.username)
                .join(TeamMember, TeamMember.user_id == User.id)
                .join(Team, Team.id == TeamMember.team_id)
                .join(organization, organization.id == Team.organization_id)
                .where(Team.name == team, organization.username == org)
            )
        )
