"""The audit log: one row per state change, readable per user, organization and repository."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cargohold.db.base import Base, utcnow


class LogEntry(Base):
    __tablename__ = "log_entry"
    __table_args__ = (
        Index("ix_log_entry_account_datetime", "account_id", "datetime"),
        Index("ix_log_entry_performer_datetime", "performer_id", "datetime"),
        Index("ix_log_entry_repository_datetime", "repository_id", "datetime"),
        Index("ix_log_entry_datetime", "datetime"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    # The namespace (user or organization) the action happened in. Plain ids, no foreign
    # keys: the log must outlive what it talks about.
    account_id: Mapped[int | None] = mapped_column()
    performer_id: Mapped[int | None] = mapped_column()
    repository_id: Mapped[int | None] = mapped_column()
    ip: Mapped[str | None] = mapped_column(String(64))
    metadata_json: Mapped[str] = mapped_column(Text, default="{}")
    datetime: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LogExport(Base):
    """An export of audit entries to a JSON file in blob storage, downloadable until `expires`.

    The download link carries a secret; only its SHA-256 is kept, so the table alone cannot
    be turned into links.
    """

    __tablename__ = "log_export"

    id: Mapped[int] = mapped_column(primary_key=True)
    export_id: Mapped[str] = mapped_column(String(36), unique=True)
    file_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    digest: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires: Mapped[dt.datetime | None] = mapped_column(index=True)
