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
from cargohold.domain.audit import log_action
from cargohold.domain.errors import NotFound
from cargohold.domain.teams import Actor

DEFAULT_EXPIRING_WINDOW_S = 4 * 7 * 86400


def _box(settings: Settings) -> SecretBox:
    return SecretBox(settings.DATABASE_SECRET_KEY)


def _lifetime_s(settings: Settings) -> int | None:
    value = settings.APP_SPECIFIC_TOKEN_EXPIRATION
    return parse_duration(value) if value else None


def _audit(session: Session, actor: Actor, kind: str, token: AppSpecificToken) -> None:
    log_action(
        session,
        kind,
        namespace=actor.user,
        auth=actor.auth,
        ip=actor.ip,
        metadata={"app_specific_token_title": token.title, "app_specific_token": token.uuid},
    )


def create_token(
    session: Session, settings: Settings, actor: Actor, title: str
) -> tuple[AppSpecificToken, str]:
    """A new token for the acting user; returns the row and the full 120-character code."""
    user = actor.user
    assert user is not None
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
    _audit(session, actor, "create_app_specific_token", token)
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
) -> AppSpecificToken:
    """One of the user's own tokens by uuid; another user's token is simply not found."""
    query = select(AppSpecificToken).where(
        AppSpecificToken.user_id == user.id, AppSpecificToken.uuid == token_uuid
    )
    if not include_expired:
        query = query.where(
            AppSpecificToken.expiration.is_(None) | (AppSpecificToken.expiration > utcnow())
        )
    token = session.scalar(query)
    if token is None:
        raise NotFound()
    return token


def revoke_token(session: Session, actor: Actor, token_uuid: str) -> None:
    """The acting user's token stops working at once, expired or not."""
    assert actor.user is not None
    token = find_token(session, actor.user, token_uuid, include_expired=True)
    _audit(session, actor, "revoke_app_specific_token", token)
    session.delete(token)
