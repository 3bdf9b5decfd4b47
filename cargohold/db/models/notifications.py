"""Notifications shown to a user (or an organization's admins) and repository notifications."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cargohold.db.base import Base, utcnow
from cargohold.db.models.accounts import new_uuid
from cargohold.db.models.registry import Repository


class UserNotification(Base):
    __tablename__ = "user_notification"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    # A user, or an organization whose admins all see it.
    target_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    metadata_json: Mapped[str] = mapped_column(Text, default="{}")
    # A secret the notification shows again to its target (an invite code), encrypted at rest.
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    dismissed: Mapped[bool] = mapped_column(Boolean, default=False)


class RepositoryNotification(Base):
    """A repository's subscription: when `event` happens, deliver through `method`."""

    __tablename__ = "repository_notification"
    __table_args__ = (Index("ix_repository_notification_repo_event", "repository_id", "event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(255))
    config_json: Mapped[str] = mapped_column(Text, default="{}")
    event_config_json: Mapped[str] = mapped_column(Text, default="{}")
    number_of_failures: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    repository: Mapped[Repository] = relationship()


class TagNotificationSent(Base):
    """A tag already announced by a `repo_image_expiry` notification: it fires once per tag."""

    __tablename__ = "tag_notification_sent"
    __table_args__ = (UniqueConstraint("notification_id", "tag_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("repository_notification.id", ondelete="CASCADE")
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), index=True)


class RepositoryAuthorizedEmail(Base):
    """An address that confirmed it wants a repository's e-mail notifications."""

    __tablename__ = "repository_authorized_email"
    __table_args__ = (UniqueConstraint("repository_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(255))
    # SHA-256 of the confirmation code sent to the address; cleared once confirmed.
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
