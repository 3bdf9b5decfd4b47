"""Tag policies: auto-prune (keep N tags / drop old tags) and immutability (tag patterns).

A policy belongs to a namespace (organization or user) or to one repository; its rule is a
small JSON document in Quay's own key names, so the API returns what was stored.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cargohold.db.base import Base
from cargohold.db.models.accounts import new_uuid


class NamespaceAutoPrunePolicy(Base):
    __tablename__ = "namespace_autoprune_policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    policy_json: Mapped[str] = mapped_column(Text)


class RepositoryAutoPrunePolicy(Base):
    __tablename__ = "repository_autoprune_policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), index=True
    )
    policy_json: Mapped[str] = mapped_column(Text)


class NamespaceImmutabilityPolicy(Base):
    __tablename__ = "namespace_immutability_policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    policy_json: Mapped[str] = mapped_column(Text)


class RepositoryImmutabilityPolicy(Base):
    __tablename__ = "repository_immutability_policy"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), index=True
    )
    policy_json: Mapped[str] = mapped_column(Text)
