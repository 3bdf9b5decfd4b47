"""Dockerfile builds: build triggers, builds, their log lines, and uploaded build inputs."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cargohold.db.base import Base, utcnow
from cargohold.db.models.accounts import User, new_uuid
from cargohold.db.models.registry import Repository


class BuildTrigger(Base):
    """A source of builds for one repository (custom git, or an SCM service).

    The webhook secret is kept twice: hashed to check webhook calls, and encrypted because
    the webhook URL embedding it is shown again to the repository's admins.
    """

    __tablename__ = "build_trigger"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    service: Mapped[str] = mapped_column(String(32))
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), index=True
    )
    connected_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL")
    )
    config_json: Mapped[str] = mapped_column(Text, default="{}")
    auth_token_encrypted: Mapped[str | None] = mapped_column(Text)
    private_key_encrypted: Mapped[str | None] = mapped_column(Text)
    public_key: Mapped[str | None] = mapped_column(Text)
    write_token_hash: Mapped[str | None] = mapped_column(String(128))
    write_token_encrypted: Mapped[str | None] = mapped_column(Text)
    pull_robot_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(64))
    disabled_datetime: Mapped[dt.datetime | None] = mapped_column()
    successive_failure_count: Mapped[int] = mapped_column(Integer, default=0)
    successive_internal_error_count: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    repository: Mapped[Repository] = relationship()
    connected_user: Mapped[User | None] = relationship(foreign_keys=[connected_user_id])
    pull_robot: Mapped[User | None] = relationship(foreign_keys=[pull_robot_id])


class UserFile(Base):
    """A file uploaded through the filedrop URL, stored in blob storage under its digest."""

    __tablename__ = "user_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    mime_type: Mapped[str] = mapped_column(String(255))
    digest: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RepositoryBuild(Base):
    """One requested build. `job_config_json` holds what to build and which tags to push."""

    __tablename__ = "repository_build"
    __table_args__ = (
        Index("ix_repository_build_repository_started", "repository_id", "started"),
        Index("ix_repository_build_trigger_started", "trigger_id", "started"),
        Index("ix_repository_build_phase", "phase"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    phase: Mapped[str] = mapped_column(String(32), default="waiting")
    started: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed: Mapped[dt.datetime | None] = mapped_column()
    display_name: Mapped[str] = mapped_column(String(255))
    job_config_json: Mapped[str] = mapped_column(Text)
    trigger_id: Mapped[int | None] = mapped_column(
        ForeignKey("build_trigger.id", ondelete="SET NULL")
    )
    pull_robot_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    resource_key: Mapped[str | None] = mapped_column(String(255))
    queue_id: Mapped[int | None] = mapped_column(Integer)
    logs_archived: Mapped[bool] = mapped_column(Boolean, default=False)

    repository: Mapped[Repository] = relationship()
    trigger: Mapped[BuildTrigger | None] = relationship()
    pull_robot: Mapped[User | None] = relationship()


class BuildLogEntry(Base):
    """One line of a build's log; entries are read back in id order, paged by position."""

    __tablename__ = "build_log_entry"
    __table_args__ = (Index("ix_build_log_entry_build", "build_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    build_id: Mapped[int] = mapped_column(ForeignKey("repository_build.id", ondelete="CASCADE"))
    message: Mapped[str] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(String(16))
    data_json: Mapped[str] = mapped_column(Text, default="{}")
