"""Service keys: RSA keys that sign registry tokens and that services present to the key server."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cargohold.db.base import Base, utcnow
from cargohold.db.models.accounts import User


class ServiceKeyApproval(Base):
    __tablename__ = "service_key_approval"

    id: Mapped[int] = mapped_column(primary_key=True)
    approver_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    approval_type: Mapped[str] = mapped_column(String(64))
    approved_date: Mapped[dt.datetime] = mapped_column(default=utcnow)
    notes: Mapped[str] = mapped_column(Text, default="")

    approver: Mapped[User | None] = relationship()


class ServiceKey(Base):
    __tablename__ = "service_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(255), unique=True)
    service: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    jwk_json: Mapped[str] = mapped_column(Text)
    metadata_json: Mapped[str] = mapped_column(Text, default="{}")
    created_date: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expiration_date: Mapped[dt.datetime | None] = mapped_column()
    rotation_duration: Mapped[int | None] = mapped_column(Integer)
    approval_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_key_approval.id", ondelete="SET NULL")
    )
    # Only for keys this installation made for itself: the private half, encrypted with
    # DATABASE_SECRET_KEY. Keys created through the API hand the private key out once.
    private_key_encrypted: Mapped[str | None] = mapped_column(Text)

    approval: Mapped[ServiceKeyApproval | None] = relationship()
