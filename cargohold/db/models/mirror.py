"""Repository mirroring: one pull-mirror configuration per repository."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cargohold.db.base import Base
from cargohold.db.models.accounts import User
from cargohold.db.models.registry import Repository


class SyncStatus(enum.StrEnum):
    NEVER_RUN = "NEVER_RUN"
    SYNC_NOW = "SYNC_NOW"
    SYNCING = "SYNCING"
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"
    CANCEL = "CANCEL"


class RepoMirrorConfig(Base):
    __tablename__ = "repo_mirror_config"

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), unique=True
    )
    # The robot deleted means no one may push the mirrored tags: the config goes with it.
    robot_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    mirror_type: Mapped[str] = mapped_column(String(16), default="PULL")
    external_reference: Mapped[str] = mapped_column(String(1024))
    username_encrypted: Mapped[str | None] = mapped_column(Text)
    password_encrypted: Mapped[str | None] = mapped_column(Text)
    external_registry_config: Mapped[str] = mapped_column(Text, default="{}")
    sync_interval: Mapped[int] = mapped_column(Integer)
    sync_start_date: Mapped[dt.datetime | None] = mapped_column(index=True)
    sync_expiration_date: Mapped[dt.datetime | None] = mapped_column()
    sync_retries_remaining: Mapped[int] = mapped_column(Integer, default=3)
    sync_status: Mapped[SyncStatus] = mapped_column(
        Enum(SyncStatus, native_enum=False, length=16), default=SyncStatus.NEVER_RUN
    )
    # Changes on every claim and release; updates compare it so that two workers never both win.
    sync_transaction_id: Mapped[str] = mapped_column(String(36))
    rule_kind: Mapped[str] = mapped_column(String(32), default="tag_glob_csv")
    rule_value: Mapped[str] = mapped_column(Text)
    skopeo_timeout_interval: Mapped[int] = mapped_column(Integer, default=300)
    architecture_filter: Mapped[str] = mapped_column(Text, default="[]")

    repository: Mapped[Repository] = relationship()
    robot: Mapped[User] = relationship()
