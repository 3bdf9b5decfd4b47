"""App-specific tokens: `$app` registry passwords, a 60-character lookup name plus a secret.

The secret is hashed for checking logins and encrypted because its owner may read it again.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cargohold.auth.secrets import (
    APP_TOKEN_PREFIX_LENGTH,
    APP_TOKEN_SECRET_LENGTH,
    UPPER_ALNUM,
    SecretBox,
    new_split_token,
)
from cargohold.config import Settings, parse_duration
from cargohold.db.base import utcnow
from cargohold.db.models.accounts import AppSpecificToken, User

DEFAULT_EXPIRING_WINDOW_S = 4 * 7 * 86400


def _box(settings: Settings) -> SecretBox:
    return SecretBox(settings.DATABASE_SECRET_KEY)


def _lifetime_s(settings: Settings) -> int | None:
    value = settings.APP_SPECIFIC_TOKEN_EXPIRATION
    return parse_duration(value) if value else None


def create_token(
    session: Session, settings: Settings, user: User, title: str
) -> tuple[AppSpecificToken, str]:
    """A new token for `user`; returns the row and the full 120-character code."""
    code = new_split_token(APP_TOKEN_PREFIX_LENGTH, APP_TOKEN_SECRET_LENGTH, UPPER_ALNUM)
    lifetime = _lifetime_s(settings)
    token = AppSpecificToken(
        user_id=user.id,
        title=title,
        token_name=code.name,
        token_secret_hash=code.secret_hash,
        token_secret_encrypted=_box(settings).encrypt(code.secret),
        expiration=utcnow() + dt.timedelta(seconds=lifetime) if lifetime else None,
    )
    session.add(token)
    session.flush()
    return token, code.code


def token_code(settings: Settings, token: AppSpecificToken) -> str | None:
    secret = _box(settings).decrypt(token.token_secret_encrypted)
    return token.token_name + secret if secret is not None else None


def _expiring_soon(query: Select, settings: Settings) -> Select:
    """Tokens ending within a tenth of their configured lifetime (Quay's "expiring soon")."""
    window = (_lifetime_s(settings) or DEFAULT_EXPIRING_WINDOW_S) // 10
    now = utcnow()
    return query.where(
        AppSpecificToken.expiration.is_not(None),
        AppSpecificToken.expiration > now,
        AppSpecificToken.expiration <= now + dt.timedelta(seconds=max(window, 1)),
    )


def list_tokens(
    session: Session, settings: Settings, user: User, *, only_expiring: bool
) -> list[AppSpecificToken]:
    """The user's tokens; with `only_expiring`, those ending soon."""
    query = select(AppSpecificToken).where(AppSpecificToken.user_id == user.id)
    if only_expiring:
        query = _expiring_soon(query, settings)
    return list(session.scalars(query.order_by(AppSpecificToken.id)).all())


def list_all_tokens(
    session: Session, settings: Settings, *, only_expiring: bool
) -> list[AppSpecificToken]:
    """Every user's tokens, for the superusers' audit; with `only_expiring`, those ending soon."""
    query = select(AppSpecificToken)
    if only_expiring:
        query = _expiring_soon(query, settings)
    return list(session.scalars(query.order_by(AppSpecificToken.id)).all())


def find_token(
    session: Session, user: User, token_uuid: str, *, include_expired: bool
) -> AppSpecificToken | None:
    """One of the user's own tokens by uuid; another user's token is simply not found."""
    query = select(AppSpecificToken).where(
        AppSpecificToken.user_id == user.id, AppSpecificToken.uuid == token_uuid
    )
    if not include_expired:
        query = query.where(
            AppSpecificToken.expiration.is_(None) | (AppSpecificToken.expiration > utcnow())
        )
    return session.scalar(query)


def revoke_token(session: Session, token: AppSpecificToken) -> None:
    session.delete(token)
