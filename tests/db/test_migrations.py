"""The migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

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


def _insert_old_user(session, username: str) -> int:
    """A user row as an older schema has it: the model may have columns it lacks yet."""
    import datetime as dt
    import uuid

    from sqlalchemy import MetaData, Table, insert

    table = Table("user", MetaData(), autoload_with=session.connection())
    values = {
        "uuid": str(uuid.uuid4()),
        "username": username,
        "email": f"{username}@example.com",
        "verified": False,
        "enabled": True,
        "organization": False,
        "robot": False,
        "invoice_email": False,
        "tag_expiration_s": 0,
        "creation_date": dt.datetime(2026, 1, 1),
        "session_token": str(uuid.uuid4()),
        "deleted": False,
    }
    row = {key: value for key, value in values.items() if key in table.c}
    return session.execute(insert(table).values(row).returning(table.c.id)).scalar_one()


def test_stored_tag_sizes_lose_the_config_blob(tmp_path) -> None:
    """Image manifests stored before 0006 counted their config blob in the tag size."""
    from sqlalchemy.orm import Session

    from cargohold.db.models.registry import Manifest, Repository

    uri = (
        live.create_postgres_database()
        if live.test_backend() == "postgres"
        else f"sqlite:///{tmp_path}/sizes.db"
    )
    engine = make_engine(uri)
    image = json.dumps(
        {
            "schemaVersion": 2,
            "config": {"digest": "sha256:c", "size": 7},
            "layers": [{"digest": "sha256:a", "size": 100}, {"digest": "sha256:b", "size": 20}],
        }
    ).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    try:
        upgrade(engine, "0005_global_messages")
        with Session(engine) as session:
            owner_id = _insert_old_user(session, "sizes")
            repo = Repository(namespace_user_id=owner_id, name="app")
            session.add(repo)
            session.flush()
            for digest, body, size in (("sha256:i", image, 127), ("sha256:l", index, None)):
                session.add(
                    Manifest(
                        repository_id=repo.id,
                        digest=digest,
                        media_type="application/vnd.oci.image.manifest.v1+json",
                        manifest_bytes=body,
                        layers_compressed_size=size,
                    )
                )
            session.commit()
        upgrade(engine)
        with Session(engine) as session:
            query = select(Manifest.digest, Manifest.layers_compressed_size)
            sizes = dict(session.execute(query).tuples().all())
        assert sizes == {"sha256:i": 120, "sha256:l": None}
    finally:
        engine.dispose()
        if uri.startswith("postgresql"):
            live.drop_postgres_database(uri)
