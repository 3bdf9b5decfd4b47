"""Notifications shown to a user (or to the admins of an organization) in the web UI."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cargohold.db.base import Base, utcnow
from cargohold.db.models.accounts import new_uuid


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
