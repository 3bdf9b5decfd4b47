"""A work queue in the database: any process may enqueue, any worker may claim."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cargohold.db.base import Base, utcnow


class QueueItem(Base):
    __tablename__ = "queue_item"
    __table_args__ = (Index("ix_queue_item_claim", "queue_name", "available", "available_after"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_name: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    available: Mapped[bool] = mapped_column(default=True)
    available_after: Mapped[dt.datetime] = mapped_column(default=utcnow)
    processing_expires: Mapped[dt.datetime | None] = mapped_column()
    retries_remaining: Mapped[int] = mapped_column(Integer, default=5)
    state_id: Mapped[str] = mapped_column(String(36))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
