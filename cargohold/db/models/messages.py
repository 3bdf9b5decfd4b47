"""Global messages: the banners a superuser posts for every visitor of the web UI."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cargohold.db.base import Base, utcnow

MEDIA_TYPES = ("text/plain", "text/markdown")
SEVERITIES = ("info", "warning", "error")


class GlobalMessage(Base):
    __tablename__ = "global_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    content: Mapped[str] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
