"""The /v2 catalog: which repositories a caller's listing names."""

from __future__ import annotations

from sqlalchemy import select

from cargohold.config import Settings
from cargohold.db.models.accounts import User
from cargohold.db.session import DbSession
from cargohold.domain import repositories


def catalog_page(
    session: DbSession, settings: Settings, username: str | None, start_id: int, page_size: int
) -> tuple[list[str], int | None]:
    """The page of "namespace/name" strings `username` (None: anonymous) may list, and the id
    the next page starts at; a disabled or unknown account lists nothing."""
    user = None
    if username is not None:
        user = session.scalar(select(User).where(User.username == username))
        if user is None or not user.enabled:
            return [], None
    return repositories.visible_names_page(
        session,
        user,
        include_public=settings.FEATURE_PUBLIC_CATALOG,
        see_everything=user is not None and user.username in settings.GLOBAL_READONLY_SUPER_USERS,
        start_id=start_id,
        page_size=page_size,
    )
