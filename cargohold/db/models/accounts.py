"""Accounts: users, organizations and robots (one table, as in Quay), teams, tokens."""

from __future__ import annotations

import datetime as dt
import enum
import uuid as uuid_module

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cargohold.db.base import Base, utcnow


def new_uuid() -> str:
    return str(uuid_module.uuid4())


class User(Base):
    """A namespace-owning account: a person, an organization, or a robot (`owner+name`)."""

    __tablename__ = "user"
    __table_args__ = (
        CheckConstraint("NOT (organization AND robot)", name="org_or_robot"),
        # Organizations may share a contact email; people and robots may not.
        Index(
            "ix_user_email_unique",
            "email",
            unique=True,
            sqlite_where=text("NOT organization"),
            postgresql_where=text("NOT organization"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    organization: Mapped[bool] = mapped_column(Boolean, default=False)
    robot: Mapped[bool] = mapped_column(Boolean, default=False)
    # A superuser by `cargohold user create --superuser`, in addition to SUPER_USERS: kept
    # here so that every running replica sees it at once.
    superuser: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    invoice_email: Mapped[bool] = mapped_column(Boolean, default=False)
    invoice_email_address: Mapped[str | None] = mapped_column(String(255))
    tag_expiration_s: Mapped[int] = mapped_column(Integer, default=1209600)
    given_name: Mapped[str | None] = mapped_column(String(255))
    family_name: Mapped[str | None] = mapped_column(String(255))
    company: Mapped[str | None] = mapped_column(String(255))
    location: Mapped[str | None] = mapped_column(String(255))
    creation_date: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_accessed: Mapped[dt.datetime | None] = mapped_column()
    # Failed logins since the last success, and when the last one happened: the login
    # back-off (domain/login_backoff.py) is computed from these, shared by every replica.
    invalid_login_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_invalid_login: Mapped[dt.datetime | None] = mapped_column()
    # Sessions carry this value; changing it (sign-out everywhere, password change) ends them.
    session_token: Mapped[str] = mapped_column(String(36), default=new_uuid)
    # Marked for deletion: the namespace is gone for every reader, GC reclaims what it held.
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)

    def __repr__(self) -> str:
        return f"<User {self.username}>"


class DeletedNamespace(Base):
    """A namespace marked for deletion: its old name stays taken until GC removes the row."""

    __tablename__ = "deleted_namespace"

    id: Mapped[int] = mapped_column(primary_key=True)
    namespace_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), unique=True
    )
    original_username: Mapped[str] = mapped_column(String(255), unique=True)
    original_email: Mapped[str | None] = mapped_column(String(255))
    marked: Mapped[dt.datetime] = mapped_column(default=utcnow)
    queue_id: Mapped[str | None] = mapped_column(String(36))

    namespace: Mapped[User] = relationship()


class RobotAccountToken(Base):
    """A robot's secret: hashed for verification, encrypted so admins can read it back."""

    __tablename__ = "robot_account_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    robot_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(128))
    token_encrypted: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    unstructured_metadata: Mapped[str] = mapped_column(Text, default="{}")
    # JSON list of {"issuer", "subject"[, "audiences"]}: OIDC identities that may act as it.
    federation_config: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_accessed: Mapped[dt.datetime | None] = mapped_column()

    robot: Mapped[User] = relationship()


class TeamRole(enum.StrEnum):
    member = "member"
    creator = "creator"
    admin = "admin"


TEAM_ROLE_RANK = {TeamRole.member: 1, TeamRole.creator: 2, TeamRole.admin: 3}


class Team(Base):
    __tablename__ = "team"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[TeamRole] = mapped_column(Enum(TeamRole, native_enum=False, length=16))
    description: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    organization: Mapped[User] = relationship()


class TeamMember(Base):
    __tablename__ = "team_member"
    __table_args__ = (UniqueConstraint("team_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)

    team: Mapped[Team] = relationship()
    user: Mapped[User] = relationship()


class TeamMemberInvite(Base):
    """A pending invitation to a team, for an existing user or for an email address."""

    __tablename__ = "team_member_invite"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    email: Mapped[str | None] = mapped_column(String(255))
    inviter_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    invite_token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    team: Mapped[Team] = relationship()
    user: Mapped[User | None] = relationship(foreign_keys=[user_id])
    inviter: Mapped[User | None] = relationship(foreign_keys=[inviter_id])


class OAuthApplication(Base):
    __tablename__ = "oauth_application"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(20), unique=True)
    client_secret_encrypted: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    application_uri: Mapped[str] = mapped_column(String(255), default="")
    redirect_uri: Mapped[str] = mapped_column(String(255), default="")
    avatar_email: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    organization: Mapped[User] = relationship()


class OAuthAccessToken(Base):
    """A bearer token: the first 20 characters select the row, the rest is checked by hash."""

    __tablename__ = "oauth_access_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    application_id: Mapped[int | None] = mapped_column(
        ForeignKey("oauth_application.id", ondelete="CASCADE"), index=True
    )
    authorized_user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(255))
    token_name: Mapped[str] = mapped_column(String(20), unique=True)
    token_code_hash: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    expires_at: Mapped[dt.datetime | None] = mapped_column()
    last_accessed: Mapped[dt.datetime | None] = mapped_column()

    application: Mapped[OAuthApplication | None] = relationship()
    authorized_user: Mapped[User] = relationship(foreign_keys=[authorized_user_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])


class OAuthAssignedToken(Base):
    """An organization admin's request that a user grant an application a token."""

    __tablename__ = "oauth_assigned_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("oauth_application.id", ondelete="CASCADE"), index=True
    )
    assigned_user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(255))
    response_type: Mapped[str] = mapped_column(String(255))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    application: Mapped[OAuthApplication] = relationship()
    assigned_user: Mapped[User] = relationship()


class OAuthAuthorizationCode(Base):
    """A one-time code of the authorization-code grant: 20 characters find it, the rest is hashed."""

    __tablename__ = "oauth_authorization_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("oauth_application.id", ondelete="CASCADE"), index=True
    )
    authorized_user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    code_name: Mapped[str] = mapped_column(String(20), unique=True)
    code_hash: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(255))
    redirect_uri: Mapped[str] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()

    application: Mapped[OAuthApplication] = relationship()
    authorized_user: Mapped[User] = relationship()


class AppSpecificToken(Base):
    """`$app` tokens: 60-character lookup prefix plus a 60-character secret."""

    __tablename__ = "app_specific_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(255))
    token_name: Mapped[str] = mapped_column(String(60), unique=True)
    token_secret_hash: Mapped[str] = mapped_column(String(128))
    token_secret_encrypted: Mapped[str] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expiration: Mapped[dt.datetime | None] = mapped_column()
    last_accessed: Mapped[dt.datetime | None] = mapped_column()

    user: Mapped[User] = relationship()
