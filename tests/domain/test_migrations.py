"""The migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from cargohold.db import models  # noqa: F401
from cargohold.db.base import Base, make_engine
from cargohold.db.migrate import upgrade
from tests.support import server as live


def test_migrated_schema_matches_the_models(tmp_path) -> None:
    uri = (
        live.create_postgres_database()
        if live.test_backend() == "postgres"
        else f"sqlite:///{tmp_path}/m.db"
    )
    engine = make_engine(uri)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
        assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables) | {
            "alembic_version"
        }
    finally:
        engine.dispose()
        if uri.startswith("postgresql"):
            live.drop_postgres_database(uri)
