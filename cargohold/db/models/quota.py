"""Namespace quotas, their limits, cached storage usage and the registry-size calculation."""

from __future__ import annotations

import enum

from sqlalchemy import BigInteger, Boolean, Enum, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cargohold.db.base import Base
from cargohold.db.models.accounts import User


class QuotaLimitType(enum.StrEnum):
    WARNING = "Warning"
    REJECT = "Reject"


class NamespaceQuota(Base):
    """At most one quota per user or organization; it enforces nothing without limits."""

    __tablename__ = "namespace_quota"

    id: Mapped[int] = mapped_column(primary_key=True)
    namespace_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), unique=True
    )
    limit_bytes: Mapped[int] = mapped_column(BigInteger)

    namespace: Mapped[User] = relationship()
    limits: Mapped[list[QuotaLimit]] = relationship(
        back_populates="quota",
        order_by="QuotaLimit.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class QuotaLimit(Base):
    __tablename__ = "quota_limit"

    id: Mapped[int] = mapped_column(primary_key=True)
    quota_id: Mapped[int] = mapped_column(
        ForeignKey("namespace_quota.id", ondelete="CASCADE"), index=True
    )
    limit_type: Mapped[QuotaLimitType] = mapped_column(
        Enum(
            QuotaLimitType,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    percent_of_limit: Mapped[int] = mapped_column(Integer)

    quota: Mapped[NamespaceQuota] = relationship(back_populates="limits")


class NamespaceSize(Base):
    """Cached usage of a namespace: the distinct blobs its manifests reference."""

    __tablename__ = "quota_namespace_size"

    id: Mapped[int] = mapped_column(primary_key=True)
    namespace_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), unique=True
    )
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    backfill_start_ms: Mapped[int | None] = mapped_column(BigInteger)
    backfill_complete: Mapped[bool] = mapped_column(Boolean, default=False)


class RepositorySize(Base):
    __tablename__ = "quota_repository_size"

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), unique=True
    )
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    backfill_start_ms: Mapped[int | None] = mapped_column(BigInteger)
    backfill_complete: Mapped[bool] = mapped_column(Boolean, default=False)


class RegistrySize(Base):
    """The single row tracking the whole-registry size calculation."""

    __tablename__ = "quota_registry_size"

    id: Mapped[int] = mapped_column(primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    running: Mapped[bool] = mapped_column(Boolean, default=False)
    queued: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_ms: Mapped[int | None] = mapped_column(BigInteger)
