"""OAuth access tokens: the one place a bearer token is minted.

A token is a split token (auth/secrets.py): 20 characters to find it, 20 more checked against
a hash. Every way to obtain one (the implicit and code flows, an admin minting one for an
application, the first user's initial token) comes through `issue_access_token`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy.orm import Session

from cargohold.auth.context import Scope
from cargohold.auth.secrets import (
    OAUTH_TOKEN_PREFIX_LENGTH,
    OAUTH_TOKEN_SECRET_LENGTH,
    new_split_token,
)
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import OAuthAccessToken, OAuthApplication, User


def scope_text(scopes: str | Iterable[Scope]) -> str:
    """Scopes as stored: the space-separated names, sorted when given as a set."""
    if isinstance(scopes, str):
        return scopes
    return " ".join(sorted(scope.value for scope in scopes))


def issue_access_token(
    session: Session,
    user: User,
    scopes: str | Iterable[Scope],
    *,
    application: OAuthApplication | None = None,
    expires_in_s: int | None = None,
    name: str | None = None,
    created_by: User | None = None,
) -> tuple[OAuthAccessToken, str]:
    """Store a new token and return it with its code, which is never readable again."""
    token = new_split_token(OAUTH_TOKEN_PREFIX_LENGTH, OAUTH_TOKEN_SECRET_LENGTH)
    record = OAuthAccessToken(
        application_id=application.id if application is not None else None,
        authorized_user_id=user.id,
        scope=scope_text(scopes),
        token_name=token.name,
        token_code_hash=token.secret_hash,
        name=name,
        created_by_id=created_by.id if created_by is not None else None,
        expires_at=utcnow() + dt.timedelta(seconds=expires_in_s) if expires_in_s else None,
    )
    record.created_by = created_by
    session.add(record)
    session.flush()
    return record, token.code
