"""Database settings as Quay writes them, and migrations only when asked for."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from cargohold.config import load_settings
from cargohold.db.base import engine_for, make_engine
from tests.support import server as live
from tests.support.server import REPO_ROOT, free_port

# Quay's documented example: peewee options its guide says "should always be true".
QUAY_CONNECTION_ARGS = {"autorollback": True, "threadlocals": True}


@pytest.fixture
def db_uri(tmp_path: Path) -> Iterator[str]:
    """An empty database named explicitly in DB_URI, on the backend under test."""
    if live.test_backend() == "postgres":
        uri = live.create_postgres_database()
        yield uri
        live.drop_postgres_database(uri)
    else:
        yield f"sqlite:///{tmp_path / 'explicit.db'}"


def cargohold(folder: Path, config: dict[str, Any], *args: str) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(
        yaml.safe_dump({"DATA_DIR": str(folder / "data"), **config})
    )
    return subprocess.run(
        [sys.executable, "-m", "cargohold.cli", "--config-dir", str(folder), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_quay_connection_args_migrate(tmp_path: Path, db_uri: str) -> None:
    args = {
        **QUAY_CONNECTION_ARGS,
        "connect_timeout": 5,
        "stale_timeout": 300,
        "max_connections": 4,
        "sslmode": "disable",
        "made_up_option": 1,
    }
    result = cargohold(tmp_path, {"DB_URI": db_uri, "DB_CONNECTION_ARGS": args}, "migrate")
    assert result.returncode == 0, result.stderr
    assert "database is up to date" in result.stdout
    assert "DB_CONNECTION_ARGS made_up_option has no meaning" in result.stderr
    assert "autorollback" not in result.stderr
    engine = make_engine(db_uri)
    try:
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        engine.dispose()


@pytest.mark.skipif(live.test_backend() != "postgres", reason="libpq parameters")
def test_libpq_parameters_reach_the_driver(tmp_path: Path, db_uri: str) -> None:
    """The test server speaks no TLS: requiring it proves sslmode got through to libpq."""
    args = {**QUAY_CONNECTION_ARGS, "sslmode": "require"}
    result = cargohold(tmp_path, {"DB_URI": db_uri, "DB_CONNECTION_ARGS": args}, "migrate")
    assert result.returncode != 0
    assert "SSL" in result.stderr


def test_pool_size_and_overflow_are_settings(db_uri: str) -> None:
    settings = load_settings(
        None,
        environ={
            "CARGOHOLD_DB_URI": db_uri,
            "CARGOHOLD_DB_POOL_SIZE": "3",
            "CARGOHOLD_DB_POOL_MAX_OVERFLOW": "1",
            "CARGOHOLD_SECRET_KEY": "s",
            "CARGOHOLD_DATABASE_SECRET_KEY": "d",
        },
    )
    engine = engine_for(settings)
    try:
        assert engine.pool.size() == 3
        assert engine.pool._max_overflow == 1  # noqa: SLF001 - no public accessor
    finally:
        engine.dispose()


def _last_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_commands_do_not_migrate_a_configured_database(tmp_path: Path, db_uri: str) -> None:
    config = {"DB_URI": db_uri}
    port = str(free_port())
    for command in (
        ["serve", "--port", port, "--no-workers"],
        ["user", "create", "ann", "--email", "ann@example.com", "--password", "a-long-password"],
        ["gc", "--dry-run"],
    ):
        refused = cargohold(tmp_path, config, *command)
        assert refused.returncode == 3, refused.stderr
        assert _last_line(refused) == (
            "cargohold: the database has no cargohold schema yet: "
            "run `cargohold migrate` (or pass --migrate)"
        )
    created = cargohold(
        tmp_path,
        config,
        *["user", "create", "ann", "--email", "ann@example.com"],
        *["--password", "a-long-password", "--migrate"],
    )
    assert created.returncode == 0, created.stderr
    assert cargohold(tmp_path, config, "gc", "--dry-run").returncode == 0

    engine = make_engine(db_uri)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '0999_future'"))
    finally:
        engine.dispose()
    newer = cargohold(tmp_path, config, "serve", "--port", port, "--no-workers")
    assert newer.returncode == 3
    assert "the database schema (revision 0999_future) is newer than this cargohold" in (
        _last_line(newer)
    )


def test_the_embedded_database_migrates_itself(tmp_path: Path) -> None:
    created = cargohold(
        tmp_path,
        {},
        *["user", "create", "bob", "--email", "bob@example.com", "--password", "a-long-password"],
    )
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "data" / "cargohold.db").is_file()
