"""Build inputs uploaded through filedrop: announced first, then stored once under a digest."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargohold.auth.context import AuthContext
from cargohold.db.models.builds import RepositoryBuild, UserFile
from cargohold.db.models.registry import Repository
from cargohold.domain import permissions
from cargohold.domain.errors import Invalid, NotFound


def announce(session: Session, mime_type: str) -> UserFile:
    """A new file id to upload to; the unguessable id is the upload's credential."""
    user_file = UserFile(mime_type=mime_type)
    session.add(user_file)
    session.flush()
    return user_file


def find(session: Session, file_id: str) -> UserFile | None:
    return session.scalar(select(UserFile).where(UserFile.uuid == file_id))


def stored(session: Session, file_id: str) -> UserFile | None:
    """The file if its bytes have been uploaded."""
    user_file = find(session, file_id)
    return user_file if user_file is not None and user_file.digest is not None else None


def require_awaiting_upload(session: Session, file_id: str) -> None:
    """An upload goes only to an announced file that has no bytes yet."""
    user_file = find(session, file_id)
    if user_file is None:
        raise NotFound()
    if user_file.digest is not None:
        raise Invalid("File has already been uploaded")


def record_upload(session: Session, file_id: str, digest: str, size: int) -> None:
    user_file = find(session, file_id)
    if user_file is None:
        raise NotFound()
    user_file.digest = digest
    user_file.size = size


def reusable_by(session: Session, auth: AuthContext, file_id: str) -> bool:
    """A file already built elsewhere is only usable by writers of those repositories."""
    used_in = session.scalars(
        select(Repository)
        .join(RepositoryBuild, RepositoryBuild.repository_id == Repository.id)
        .where(RepositoryBuild.resource_key == file_id)
        .distinct()
    ).all()
    return all(permissions.can_write_repository(session, auth, repo) for repo in used_in)
