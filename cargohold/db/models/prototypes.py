"""Default permissions ("prototypes"): grants an organization gives every new repository."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cargohold.db.base import Base
from cargohold.db.models.accounts import Team, User, new_uuid
from cargohold.db.models.registry import Role


class PermissionPrototype(Base):
    """Give `role` to a user/robot or a team on repositories created in the organization.

    With an activating user, only repositories that user creates are affected.
    """

    __tablename__ = "permission_prototype"
    __table_args__ = (
        CheckConstraint(
            "(delegate_user_id IS NULL) <> (delegate_team_id IS NULL)", name="one_delegate"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    activating_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    delegate_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    delegate_team_id: Mapped[int | None] = mapped_column(
        ForeignKey("team.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))

    organization: Mapped[User] = relationship(foreign_keys=[organization_id])
    activating_user: Mapped[User | None] = relationship(foreign_keys=[activating_user_id])
    delegate_user: Mapped[User | None] = relationship(foreign_keys=[delegate_user_id])
    delegate_team: Mapped[Team | None] = relationship()
