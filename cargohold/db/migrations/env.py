"""Alembic environment: runs against the engine handed over by cargohold.db.migrate."""

from alembic import context

from cargohold.db import models  # noqa: F401  (registers every table)
from cargohold.db.base import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
