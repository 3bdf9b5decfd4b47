"""Issuing OAuth access tokens: 40 characters, a 20-character lookup prefix and a hashed secret."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from cargohold.auth.credentials import OAUTH_TOKEN_PREFIX_LENGTH
from cargohold.auth.secrets import ALNUM, hash_token, random_code
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import OAuthAccessToken, OAuthApplication, User

OAUTH_TOKEN_SECRET_LENGTH = 20


def issue_access_token(
    session: Session,
    user: User,
    scope: str,
    *,
    application: OAuthApplication | None = None,
    expires_in_s: int | None = None,
    name: str | None = None,
    created_by: User | None = None,
) -> tuple[OAuthAccessToken, str]:
    """Store a new token and return it with its code, which is never readable again."""
    prefix = random_code(OAUTH_TOKEN_PREFIX_LENGTH, ALNUM)
    secret = random_code(OAUTH_TOKEN_SECRET_LENGTH, ALNUM)
    token = OAuthAccessToken(
        application_id=application.id if application is not None else None,
        authorized_user_id=user.id,
        scope=scope,
        token_name=prefix,
        token_code_hash=hash_token(secret),
        name=name,
        created_by_id=created_by.id if created_by is not None else None,
        expires_at=utcnow() + dt.timedelta(seconds=expires_in_s) if expires_in_s else None,
    )
    session.add(token)
    session.flush()
    return token, prefix + secret
