"""Repositories and their content: blobs, manifests, tags with history, permissions, stars."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cargohold.db.base import Base, utcnow
from cargohold.db.models.accounts import Team, User, new_uuid


class RepositoryState(enum.IntEnum):
    NORMAL = 0
    READ_ONLY = 1
    MIRROR = 2


class Role(enum.StrEnum):
    read = "read"
    write = "write"
    admin = "admin"


ROLE_RANK = {Role.read: 1, Role.write: 2, Role.admin: 3}


class Repository(Base):
    __tablename__ = "repository"
    __table_args__ = (UniqueConstraint("namespace_user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    namespace_user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text)
    state: Mapped[RepositoryState] = mapped_column(Integer, default=RepositoryState.NORMAL)
    kind: Mapped[str] = mapped_column(String(16), default="image")
    trust_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Lets badge URLs of a private repository be shared without credentials.
    badge_token: Mapped[str] = mapped_column(String(36), default=new_uuid)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_modified: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Deleted repositories are renamed out of the way and reclaimed by GC.
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, index=True)

    namespace_user: Mapped[User] = relationship()

    @property
    def full_name(self) -> str:
        return f"{self.namespace_user.username}/{self.name}"


class RepositoryPermission(Base):
    """A role on a repository granted to a user/robot or to a team."""

    __tablename__ = "repository_permission"
    __table_args__ = (
        Index(
            "ix_repository_permission_user",
            "repository_id",
            "user_id",
            unique=True,
            sqlite_where=text("user_id IS NOT NULL"),
            postgresql_where=text("user_id IS NOT NULL"),
        ),
        Index(
            "ix_repository_permission_team",
            "repository_id",
            "team_id",
            unique=True,
            sqlite_where=text("team_id IS NOT NULL"),
            postgresql_where=text("team_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("team.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))

    repository: Mapped[Repository] = relationship()
    user: Mapped[User | None] = relationship()
    team: Mapped[Team | None] = relationship()


class Star(Base):
    __tablename__ = "star"
    __table_args__ = (UniqueConstraint("user_id", "repository_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), index=True
    )
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    repository: Mapped[Repository] = relationship()


class Blob(Base):
    """Content-addressed bytes, stored once per digest and shared by every repository."""

    __tablename__ = "blob"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(255), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class RepositoryBlob(Base):
    """A repository may serve this blob: it was uploaded, mounted or referenced here.

    `expires_at` is the grace period for blobs not yet referenced by a manifest; GC keeps
    them until then so a push in progress never loses its layers.
    """

    __tablename__ = "repository_blob"
    __table_args__ = (UniqueConstraint("repository_id", "blob_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    blob_id: Mapped[int] = mapped_column(ForeignKey("blob.id", ondelete="CASCADE"), index=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(index=True)

    blob: Mapped[Blob] = relationship()


class Manifest(Base):
    __tablename__ = "manifest"
    __table_args__ = (
        UniqueConstraint("repository_id", "digest"),
        Index("ix_manifest_subject", "repository_id", "subject_digest"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(255), index=True)
    media_type: Mapped[str] = mapped_column(String(255))
    manifest_bytes: Mapped[bytes] = mapped_column(LargeBinary)
    config_media_type: Mapped[str | None] = mapped_column(String(255))
    artifact_type: Mapped[str | None] = mapped_column(String(255))
    subject_digest: Mapped[str | None] = mapped_column(String(255))
    # Sum of the sizes of the layers (and config) this manifest references directly.
    layers_compressed_size: Mapped[int | None] = mapped_column(BigInteger)
    annotations_json: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    repository: Mapped[Repository] = relationship()


class ManifestBlob(Base):
    __tablename__ = "manifest_blob"
    __table_args__ = (
        UniqueConstraint("manifest_id", "blob_id"),
        # Whether a repository refers to a blob is one seek: a push's size accounting and
        # GC's link checks ask it for each blob.
        Index("ix_manifest_blob_repository_blob", "repository_id", "blob_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifest.id", ondelete="CASCADE"))
    blob_id: Mapped[int] = mapped_column(ForeignKey("blob.id", ondelete="RESTRICT"), index=True)

    blob: Mapped[Blob] = relationship()


class ManifestChild(Base):
    """An index or manifest list refers to a child manifest in the same repository."""

    __tablename__ = "manifest_child"
    __table_args__ = (UniqueConstraint("manifest_id", "child_manifest_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), index=True
    )
    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifest.id", ondelete="CASCADE"))
    child_manifest_id: Mapped[int] = mapped_column(
        ForeignKey("manifest.id", ondelete="RESTRICT"), index=True
    )


class Tag(Base):
    """One lifetime of a tag name: moving or deleting a tag ends this row and starts another.

    At most one row per (repository, name) is alive (lifetime_end_ms IS NULL), enforced by a
    partial unique index so that concurrent pushes of one tag cannot both win.
    """

    __tablename__ = "tag"
    __table_args__ = (
        Index(
            "ix_tag_alive",
            "repository_id",
            "name",
            unique=True,
            sqlite_where=text("lifetime_end_ms IS NULL"),
            postgresql_where=text("lifetime_end_ms IS NULL"),
        ),
        Index(
            "ix_tag_repository_name_end_hidden",
            "repository_id",
            "name",
            "lifetime_end_ms",
            "hidden",
        ),
        Index("ix_tag_lifetime_end", "lifetime_end_ms"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repository.id", ondelete="CASCADE"))
    manifest_id: Mapped[int] = mapped_column(
        ForeignKey("manifest.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    lifetime_start_ms: Mapped[int] = mapped_column(BigInteger)
    lifetime_end_ms: Mapped[int | None] = mapped_column(BigInteger)
    # Hidden tags keep manifests pushed by digest alive for a while; never listed.
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    reversion: Mapped[bool] = mapped_column(Boolean, default=False)
    immutable: Mapped[bool] = mapped_column(Boolean, default=False)

    manifest: Mapped[Manifest] = relationship()


# History listings page newest-first within a repository straight off this index.
Index(
    "ix_tag_history_order",
    Tag.repository_id,
    Tag.hidden,
    Tag.lifetime_start_ms.desc(),
    Tag.name,
    Tag.id.desc(),
)


class ManifestLabel(Base):
    __tablename__ = "manifest_label"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), index=True
    )
    manifest_id: Mapped[int] = mapped_column(
        ForeignKey("manifest.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(String(64), default="text/plain")
    source_type: Mapped[str] = mapped_column(String(32), default="api")


class BlobUpload(Base):
    """An upload session. Its state lives here and in storage, so any process can resume it."""

    __tablename__ = "blob_upload"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), index=True
    )
    byte_count: Mapped[int] = mapped_column(BigInteger, default=0)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    # Driver-specific state (e.g. the S3 multipart upload id and part list), JSON.
    storage_metadata: Mapped[str] = mapped_column(Text, default="{}")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated: Mapped[dt.datetime] = mapped_column(default=utcnow)
