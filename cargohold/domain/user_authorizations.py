"""The OAuth authorizations a user granted: the access tokens issued to applications for them.

Tokens with no application (those an admin mints for a script) are not authorizations.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cargohold.db.models.accounts import OAuthAccessToken, OAuthApplication, User
from cargohold.domain.errors import NotFound


def list_authorizations(session: Session, user: User) -> list[OAuthAccessToken]:
    """The user's grants, oldest first, with their applications and organizations loaded."""
    return list(
        session.scalars(
            select(OAuthAccessToken)
            .options(
                selectinload(OAuthAccessToken.application).selectinload(
                    OAuthApplication.organization
                )
            )
            .where(
                OAuthAccessToken.authorized_user_id == user.id,
                OAuthAccessToken.application_id.is_not(None),
            )
            .order_by(OAuthAccessToken.id)
        ).all()
    )


def get_authorization(session: Session, user: User, token_uuid: str) -> OAuthAccessToken:
    """One of `user`'s grants; another user's is simply not found."""
    token = session.scalar(
        select(OAuthAccessToken).where(
            OAuthAccessToken.authorized_user_id == user.id,
            OAuthAccessToken.application_id.is_not(None),
            OAuthAccessToken.uuid == token_uuid,
        )
    )
    if token is None:
        raise NotFound()
    return token


def revoke_authorization(session: Session, user: User, token_uuid: str) -> None:
    """The token stops working at once: it is deleted, as Quay deletes it."""
    session.delete(get_authorization(session, user, token_uuid))
    session.flush()
