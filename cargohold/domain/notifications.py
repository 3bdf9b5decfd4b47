"""User notifications: what the web UI shows a user, such as a pending team invitation."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cargohold.auth.secrets import SecretBox
from cargohold.config import Settings
from cargohold.db.models.accounts import Team, TeamMember, TeamRole, User
from cargohold.db.models.notifications import UserNotification

TEAM_INVITE = "org_team_invite"


def notify(
    session: Session,
    settings: Settings,
    target: User,
    kind: str,
    metadata: dict[str, Any],
    *,
    secret: tuple[str, str] | None = None,
) -> UserNotification:
    """`secret` is a (metadata key, value) pair kept encrypted and shown only in the view."""
    notification = UserNotification(
        target_id=target.id,
        kind=kind,
        metadata_json=json.dumps(metadata),
        secret_encrypted=(
            SecretBox(settings.DATABASE_SECRET_KEY).encrypt(json.dumps(list(secret)))
            if secret
            else None
        ),
    )
    session.add(notification)
    return notification


def full_metadata(settings: Settings, notification: UserNotification) -> dict[str, Any]:
    metadata = json.loads(notification.metadata_json)
    if notification.secret_encrypted:
        plain = SecretBox(settings.DATABASE_SECRET_KEY).decrypt(notification.secret_encrypted)
        if plain is not None:
            key, value = json.loads(plain)
            metadata[key] = value
    return metadata


def delete_matching(session: Session, target: User, kind: str, **match: Any) -> None:
    """Remove the target's notifications of `kind` whose metadata has the given values."""
    for notification in session.scalars(
        select(UserNotification).where(
            UserNotification.target_id == target.id, UserNotification.kind == kind
        )
    ):
        metadata = json.loads(notification.metadata_json)
        if all(metadata.get(key) == value for key, value in match.items()):
            session.delete(notification)


def _visible_to(user: User):
    """The user's own notifications and those of organizations they administer."""
    administered = (
        select(Team.organization_id)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.user_id == user.id, Team.role == TeamRole.admin)
    )
    return or_(UserNotification.target_id == user.id, UserNotification.target_id.in_(administered))


def list_notifications(
    session: Session, user: User, *, offset: int, limit: int
) -> list[tuple[UserNotification, User]]:
    """Undismissed notifications, newest first, with their target; `limit` rows at most."""
    return [
        (notification, target)
        for notification, target in session.execute(
            select(UserNotification, User)
            .join(User, User.id == UserNotification.target_id)
            .where(_visible_to(user), UserNotification.dismissed.is_(False))
            .order_by(UserNotification.id.desc())
            .offset(offset)
            .limit(limit)
        )
    ]


def get_notification(
    session: Session, user: User, notification_uuid: str
) -> tuple[UserNotification, User] | None:
    row = session.execute(
        select(UserNotification, User)
        .join(User, User.id == UserNotification.target_id)
        .where(_visible_to(user), UserNotification.uuid == notification_uuid)
    ).first()
    return (row[0], row[1]) if row else None


def set_dismissed(notification: UserNotification, dismissed: bool) -> None:
    """Mark a notification read or unread for its user."""
    notification.dismissed = dismissed
