"""Mailed codes: confirming a new account's address or a changed address, and password recovery."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cargohold.db.base import Base, utcnow
from cargohold.db.models.accounts import User


class EmailConfirmation(Base):
    __tablename__ = "email_confirmation"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    # Only the hash is kept: the code itself is a login link.
    code_hash: Mapped[str] = mapped_column(String(128), unique=True)
    # Set when confirming a changed address; the account keeps the old one until then.
    new_email: Mapped[str | None] = mapped_column(String(255))
    # A password-recovery code (a one-time sign-in link), never an address confirmation.
    pw_reset: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()
