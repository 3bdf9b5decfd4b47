"""The OAuth applications a user has authorized: the access tokens issued to them for the user."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargohold.db.models.accounts import OAuthAccessToken, User


def list_authorizations(db: Session, user: User) -> list[OAuthAccessToken]:
    """Tokens granted to applications; tokens with no application are not authorizations."""
    query = (
        select(OAuthAccessToken)
        .where(
            OAuthAccessToken.authorized_user_id == user.id,
            OAuthAccessToken.application_id.is_not(None),
        )
        .order_by(OAuthAccessToken.id)
    )
    return list(db.scalars(query))


def get_authorization(db: Session, user: User, token_uuid: str) -> OAuthAccessToken | None:
    return db.scalar(
        select(OAuthAccessToken).where(
            OAuthAccessToken.authorized_user_id == user.id,
            OAuthAccessToken.application_id.is_not(None),
            OAuthAccessToken.uuid == token_uuid,
        )
    )


def revoke_authorization(db: Session, token: OAuthAccessToken) -> None:
    """The token stops working at once: it is deleted, as Quay deletes it."""
    db.delete(token)
    db.flush()
