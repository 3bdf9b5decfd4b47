"""The names the HTTP layers use for a unit of work, so that they never import SQLAlchemy.

API and registry handlers receive a session from a dependency and hand it to domain
functions; they never build a query with it.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, sessionmaker

DbSession = Session
SessionFactory = sessionmaker[Session]
# The database refused a value the validators let through (a NUL byte, an out-of-range number).
ValueRefused = DataError

__all__ = ["DbSession", "SessionFactory", "ValueRefused"]
