"""Apply Alembic migrations programmatically (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command, util
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> AlembicConfig:
    config = alembic_config_without_engine()
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


class SchemaMismatch(Exception):
    """The database schema is not the one this code was written for; the message says why."""


def alembic_config_without_engine() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_schema(engine: Engine) -> None:
    """Refuse a database whose schema is missing, older or newer than this code's."""
    scripts = ScriptDirectory.from_config(alembic_config_without_engine())
    head = scripts.get_current_head()
    current = current_revision(engine)
    if current == head:
        return
    if current is None:
        raise SchemaMismatch(
            "the database has no cargohold schema yet: run `cargohold migrate` (or pass --migrate)"
        )
    try:
        known = scripts.get_revision(current)
    except util.CommandError:
        known = None
    if known is None:
        raise SchemaMismatch(
            f"the database schema (revision {current}) is newer than this cargohold "
            f"(revision {head}): run the newer version"
        )
    raise SchemaMismatch(
        f"the database schema (revision {current}) is older than this cargohold "
        f"(revision {head}): run `cargohold migrate` (or pass --migrate)"
    )


def prepare(engine: Engine, *, migrate: bool) -> None:
    """Upgrade when asked to; otherwise insist the schema already matches the code."""
    if migrate:
        upgrade(engine)
    else:
        check_schema(engine)
