"""What the health endpoints ask of the database."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def check_database(session: Session) -> None:
    """A round trip to the database; raises when it cannot be reached."""
    session.execute(text("SELECT 1"))
