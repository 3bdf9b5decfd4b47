"""Proxy-cache organizations: an upstream registry an organization pulls through."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cargohold.db.base import Base, utcnow

DEFAULT_EXPIRATION_S = 86400


class ProxyCacheConfig(Base):
    __tablename__ = "proxy_cache_config"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), unique=True
    )
    upstream_registry: Mapped[str] = mapped_column(String(2048))
    # Fernet-encrypted like mirror credentials: they are sent upstream, so they must be readable.
    username_encrypted: Mapped[str | None] = mapped_column(Text)
    password_encrypted: Mapped[str | None] = mapped_column(Text)
    expiration_s: Mapped[int] = mapped_column(Integer, default=DEFAULT_EXPIRATION_S)
    insecure: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ProxyBlobFetch(Base):
    """A claim on fetching one blob from an upstream; one row per digest, so one fetch."""

    __tablename__ = "proxy_blob_fetch"

    digest: Mapped[str] = mapped_column(String(255), primary_key=True)
    claimed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
