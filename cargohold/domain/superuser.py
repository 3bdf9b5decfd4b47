"""Rules for what only superusers do to namespaces: renaming an organization with its robots."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargohold.db.models.accounts import User
from cargohold.domain.accounts import NAME_RE, namespace_taken
from cargohold.domain.organizations import name_pending_deletion


class RenameError(Exception):
    """The new name is malformed (Quay answers with a data-model message)."""


class NameTaken(Exception):
    """Another user or organization holds the name."""


def rename_namespace(session: Session, namespace: User, new_name: str) -> None:
    """Rename a namespace and its robots (`old+bot` becomes `new+bot`) in the caller's transaction."""
    if not (2 <= len(new_name) <= 255) or not NAME_RE.match(new_name):
        raise RenameError(
            f"Invalid username {new_name}: Namespace must match expression "
            f"{NAME_RE.pattern} and be between 2 and 255 characters"
        )
    if namespace_taken(session, new_name) or name_pending_deletion(session, new_name):
        raise NameTaken()
    prefix = namespace.username + "+"
    robots = session.scalars(
        select(User).where(User.robot.is_(True), User.username.startswith(prefix, autoescape=True))
    ).all()
    for robot in robots:
        robot.username = f"{new_name}+{robot.username[len(prefix) :]}"
    namespace.username = new_name
    session.flush()
